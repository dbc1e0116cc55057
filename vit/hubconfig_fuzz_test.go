package vit

import (
	"strings"
	"testing"
)

// FuzzHubConfig: whatever config.json and preprocessor_config.json hold,
// parsing returns a config or one line of error, never a panic.
func FuzzHubConfig(f *testing.F) {
	f.Add([]byte(`{"architecture":"vit_custom","num_classes":10,"label_names":["a","b"],"model_args":{"embed_dim":64,"depth":3,"num_heads":4},"pretrained_cfg":{"input_size":[1,8,8],"mean":[0.3],"std":[0.4]}}`), []byte(nil))
	f.Add([]byte(`{"hidden_size":64,"num_attention_heads":4,"layer_norm_eps":1e-12,"id2label":{"0":"cat","1":"dog"}}`), []byte(`{"image_mean":[0.5,0.5,0.5],"image_std":[0.5,0.5,0.5]}`))
	f.Add([]byte(`{"num_attention_heads":-3,"layer_norm_eps":-1}`), []byte(`{"image_mean":[0.5],"image_std":[0]}`))
	f.Add([]byte(`{"id2label":{"x":"a"}}`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, cfg, pre []byte) {
		h, err := parseHubConfig("dir", cfg, pre)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not one line", err)
			}
			return
		}
		if h == nil {
			return
		}
		_ = h.classNames()
		if h.heads() < 0 || len(h.mean) != len(h.std) {
			t.Fatalf("accepted heads %d, %d means for %d stds", h.heads(), len(h.mean), len(h.std))
		}
		_ = h.check(Config{Image: 8, Channels: 1, Patch: 2, Dim: 8, Depth: 1, Heads: 1, MLPRatio: 1, Classes: 2})
	})
}
