// One engine benchmark configuration in its own process (so peak resident memory is its own):
// node dist/bench/engine-worker.js ARCH BATCH SIZE THREADS train|infer STEPS WARMUP
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import * as optim from '../src/optim/index.js';

const [arch = 'resnet18', batch = '32', size = '112', threads = '1', mode = 'train', steps = '5', warmup = '2'] = process.argv.slice(2);
torch.setNumThreads(Number(threads));
torch.manualSeed(0);
const model = models.create(models.modelName(arch));
const opt = new optim.Adam(model.parameters(), { lr: 5e-4 });
const x = torch.randn(Number(batch), 3, Number(size), Number(size)).keep();
const y = torch.randint(0, 1000, [Number(batch)]).keep();

function trainStep(): void {
  torch.tidy(() => {
    opt.zeroGrad();
    const loss = torch.crossEntropy(model.forward(x), y);
    loss.backward();
    opt.step();
  });
}
function inferStep(): void {
  torch.tidy(() => torch.inferenceMode(() => model.forward(x)));
}
const step = mode === 'train' ? trainStep : inferStep;
if (mode === 'infer') model.eval();
for (let i = 0; i < Number(warmup); i++) step();
const t0 = process.hrtime.bigint();
for (let i = 0; i < Number(steps); i++) step();
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(JSON.stringify({ imagesPerSec: (Number(steps) * Number(batch)) / secs, peakRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
