package datasets

// pixels is every image of split s as d.Image makes it, one after another.
func pixels(d *Dataset, s *Split) []float32 {
	var out []float32
	for i := range s.Len() {
		out = append(out, d.Image(s, i, nil)...)
	}
	return out
}
