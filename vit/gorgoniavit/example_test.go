package gorgoniavit_test

import (
	"fmt"
	"log"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"vitc/vit"
	"vitc/vit/gorgoniavit"
)

// A Gorgonia user loads a vitc checkpoint, builds the ViT into a graph of
// their own, puts a loss of their own on its logits, and takes a gradient
// step with a Gorgonia solver: the step updates the model's parameters,
// which share memory with the graph's parameter nodes.
func Example() {
	m, _, err := vit.Load("../testdata/vitc/micro_taylor.safetensors", vit.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	const batch = 2
	g := gorgonia.NewGraph()
	images := make([]float32, batch*m.Channels*m.Image*m.Image)
	for i := range images {
		images[i] = float32(i%7) / 7
	}
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(batch, m.Channels, m.Image, m.Image),
		gorgonia.WithName("images"), gorgonia.WithValue(tensor.New(tensor.WithShape(batch, m.Channels, m.Image, m.Image), tensor.WithBacking(images))))
	logits, err := gorgoniavit.Build(g, m, x)
	if err != nil {
		log.Fatal(err)
	}

	// The user's loss, in Gorgonia's own ops: squared error against
	// one-hot targets for classes 1 and 0.
	target := make([]float32, batch*m.Classes)
	target[1], target[m.Classes] = 1, 1
	y := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(batch, m.Classes), gorgonia.WithName("targets"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(batch, m.Classes), tensor.WithBacking(target))))
	loss := gorgonia.Must(gorgonia.Mean(gorgonia.Must(gorgonia.Square(gorgonia.Must(gorgonia.Sub(logits, y))))))

	byName := gorgoniavit.ParamNodes(g, m)
	var params gorgonia.Nodes
	for _, p := range m.Params.List() {
		params = append(params, byName[p.Name])
	}
	if _, err := gorgonia.Grad(loss, params...); err != nil {
		log.Fatal(err)
	}
	// Values are read through Read nodes, added before the machine is
	// built: after a run, a node's Value() may be a reused register.
	var lossValue gorgonia.Value
	gorgonia.Read(loss, &lossValue)
	vm := gorgonia.NewTapeMachine(g, gorgonia.BindDualValues(params...))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		log.Fatal(err)
	}
	head, _ := m.Params.Get("head.weight")
	old := head.Data[0]
	solver := gorgonia.NewVanillaSolver(gorgonia.WithLearnRate(0.001))
	if err := solver.Step(gorgonia.NodesToValueGrads(params)); err != nil {
		log.Fatal(err)
	}
	before := lossValue.Data().(float32)
	vm.Reset()
	if err := vm.RunAll(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("parameter nodes:", len(byName))
	fmt.Println("the step moved the model's own weights:", head.Data[0] != old)
	fmt.Println("the loss went down:", lossValue.Data().(float32) < before)
	// Output:
	// parameter nodes: 56
	// the step moved the model's own weights: true
	// the loss went down: true
}
