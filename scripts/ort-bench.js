// onnxruntime (CPU) inference img/s of an ONNX model whatever its input is
// named (vitc's export names it pixel_values, PyTorch's anchor x):
//   node scripts/ort-bench.js MODEL.onnx C H W BATCH THREADS SECONDS
// Prints one JSON line. ORT_NODE points at onnxruntime-node (scripts/setup-ort.sh).
const ort = require(process.env.ORT_NODE || 'onnxruntime-node');
(async () => {
  const [model, c, h, w, batch, threads, secs] = process.argv.slice(2);
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: +threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const n = +batch * +c * +h * +w;
  const x = new ort.Tensor('float32', Float32Array.from({ length: n }, () => Math.random() * 2 - 1), [+batch, +c, +h, +w]);
  const feeds = { [s.inputNames[0]]: x };
  for (let i = 0; i < 3; i++) await s.run(feeds);
  let imgs = 0;
  const t0 = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - t0) / 1e9 < +secs) { await s.run(feeds); imgs += +batch; }
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ model, batch: +batch, threads: +threads, img_per_s: imgs / dt }));
})().catch((e) => { console.error(`ort-bench: ${e.message}`); process.exit(2); });
