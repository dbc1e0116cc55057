package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"vitc/vit"
)

// convertOptions are `vitc convert`'s flags.
type convertOptions struct {
	checkpointFlags
	To  string
	Out string
}

func newConvertCmd() *cobra.Command {
	o := &convertOptions{}
	cmd := &cobra.Command{
		Use:   "convert CHECKPOINT --to hf|timm --out DIR",
		Short: "Write a checkpoint as a Hugging Face ViT or timm hub folder, for other libraries to load",
		Long: `Read a checkpoint the way every command reads one (any layout vitc reads, with
the same flags) and write it as a folder another library loads:

  --to hf    transformers' ViTForImageClassification: model.safetensors with its
             names (qkv split into query, key and value), config.json (hidden_size,
             num_attention_heads, layer_norm_eps, id2label, ...) and
             preprocessor_config.json (image_mean, image_std)
  --to timm  a timm hub folder: model.safetensors with timm's names (and vitc's
             metadata) and timm's config.json (model_args, pretrained_cfg, label_names)

Both read back into vitc with no flags. Only a dense softmax ViT has a place in
those libraries: a Taylor-attention or pruned model is refused (export it with
vitc export --format onnx). The folder is written beside DIR and renamed into
place; an existing DIR must be empty.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Checkpoint = args[0]
			return runConvert(o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "preset body of a checkpoint without vitc metadata (default: read the architecture from its tensors)")
	o.readFlags.bind(f, true)
	f.StringVar(&o.To, "to", "", "layout to write: hf or timm")
	f.StringVar(&o.Out, "out", "", "folder to write")
	_ = cmd.MarkFlagRequired("to")
	_ = cmd.MarkFlagRequired("out")
	o.cmd = cmd
	return cmd
}

func runConvert(o *convertOptions, stdout io.Writer) error {
	if o.To != vit.ToHF && o.To != vit.ToTimm {
		return fmt.Errorf("--to %q: want hf or timm", o.To)
	}
	m, meta, _, err := o.load()
	if err != nil {
		return err
	}
	if err := m.Convert(o.Out, o.To, meta); err != nil {
		if errors.Is(err, vit.ErrNotPortable) {
			return fmt.Errorf("--to %s: %v", o.To, err)
		}
		return err
	}
	o.notes.flush()
	layout := map[string]string{vit.ToHF: "Hugging Face ViTForImageClassification", vit.ToTimm: "timm"}[o.To]
	fmt.Fprintf(stdout, "wrote %s: %s folder (model.safetensors, config.json", o.Out, layout)
	if o.To == vit.ToHF {
		fmt.Fprint(stdout, ", preprocessor_config.json")
	}
	fmt.Fprintln(stdout, ")")
	return nil
}
