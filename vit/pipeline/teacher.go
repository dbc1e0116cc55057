package pipeline

import (
	"errors"
	"fmt"

	"vitc/internal/opterr"
	"vitc/vit"
	"vitc/vit/training"
)

// ErrWeakTeacher: the teacher scores near chance on the run's test split,
// or far below what its checkpoint records there. A teacher read with the
// wrong head count, LayerNorm eps or normalisation looks like this, and
// distilling from it silently costs the student tens of points.
var ErrWeakTeacher = errors.New("the teacher fails its check")

// TeacherCheck is the teacher's score on the run's test split before
// training, beside what its checkpoint records.
type TeacherCheck struct {
	Teacher  string  `json:"teacher"`
	Data     string  `json:"data"`
	Accuracy float64 `json:"accuracy"`
	// Recorded is the test accuracy the teacher's checkpoint records on
	// the same data (0: none, or other data).
	Recorded float64 `json:"recorded_accuracy,omitempty"`
	Chance   float64 `json:"chance"`
}

// weakTeacherDrop is how far below its recorded accuracy a teacher may
// score on the same data: more than noise on a few hundred test images,
// less than any misread architecture costs (tens of points).
const weakTeacherDrop = 0.05

// checkTeacher scores the teacher on r's test split, fed its own
// normalisation, and refuses a weak one unless d.AllowWeakTeacher.
func checkTeacher(d *Distill, p *parts, r *training.Run) (*TeacherCheck, error) {
	res := vit.EvaluateWith(p.teacher.Model(), r.TestLoader(), p.teacher.Input)
	tc := &TeacherCheck{Teacher: d.Teacher, Data: r.Opts.Data, Accuracy: res.Accuracy, Chance: 1 / float64(len(r.Data.Classes))}
	if p.teacherMeta.Dataset == r.Opts.Data {
		tc.Recorded = p.teacherMeta.TestAccuracy
	}
	if d.AllowWeakTeacher {
		return tc, nil
	}
	weak := func(why string) error {
		return &opterr.Error{What: fmt.Sprintf("teacher %s scores %.2f%% on the test split of %s, %s: it is probably read wrongly (heads, LayerNorm eps, normalisation) or made for other data",
			d.Teacher, 100*tc.Accuracy, tc.Data, why), Advice: "check how it is read, or distil from it anyway with %s", Option: "Distill.AllowWeakTeacher", Kind: ErrWeakTeacher}
	}
	if tc.Accuracy < tc.Chance+(1-tc.Chance)/10 {
		return tc, weak(fmt.Sprintf("near chance (%.1f%%)", 100*tc.Chance))
	}
	if tc.Recorded > 0 && tc.Accuracy < tc.Recorded-weakTeacherDrop {
		return tc, weak(fmt.Sprintf("far below the %.2f%% its checkpoint records there", 100*tc.Recorded))
	}
	return tc, nil
}
