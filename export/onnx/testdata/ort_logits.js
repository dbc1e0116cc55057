// Runs an ONNX model on a raw float32 input with onnxruntime (CPU) and writes raw float32
// logits: node ort_logits.js ORT_PACKAGE MODEL.onnx INPUT.f32 N C H W OUT.f32
// (ORT_PACKAGE: the folder of the onnxruntime-node package). Used by export/onnx's tests.
const [pkg, model, inp, n, c, h, w, out] = process.argv.slice(2);
const ort = require(pkg);
const fs = require('fs');
(async () => {
  const s = await ort.InferenceSession.create(model);
  const b = fs.readFileSync(inp);
  const x = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
  const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', Float32Array.from(x), [+n, +c, +h, +w]) });
  fs.writeFileSync(out, Buffer.from(new Float32Array(r[s.outputNames[0]].data).buffer));
})().catch((e) => { console.error(String(e)); process.exit(1); });
