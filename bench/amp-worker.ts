// One memory-format / mixed-precision configuration in its own process:
// node dist/bench/amp-worker.js ARCH BATCH SIZE THREADS train|infer fp32|cl|amp|cl+amp STEPS WARMUP
// cl: model and input in channels_last; amp: the forward pass (and loss) under bfloat16 CPU autocast.
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import * as optim from '../src/optim/index.js';

const [arch = 'resnet18', batch = '32', size = '112', threads = '2', mode = 'train', variant = 'fp32', steps = '5', warmup = '2'] = process.argv.slice(2);
if (!['fp32', 'cl', 'amp', 'cl+amp'].includes(variant)) throw new Error(`variant must be fp32, cl, amp or cl+amp, got ${variant}`);
const cl = variant.startsWith('cl');
const amp = variant.endsWith('amp');
torch.setNumThreads(Number(threads));
torch.manualSeed(0);
const model = models.create(models.modelName(arch));
if (cl) model.to({ memoryFormat: torch.channelsLast });
const opt = new optim.Adam(model.parameters(), { lr: 5e-4 });
const x0 = torch.randn(Number(batch), 3, Number(size), Number(size));
const x = (cl ? x0.contiguous(torch.channelsLast) : x0).keep();
const y = torch.randint(0, 1000, [Number(batch)]).keep();
const forward = <T>(fn: () => T): T => (amp ? torch.autocast('cpu', { dtype: 'bfloat16' }, fn) : fn());

function trainStep(): void {
  torch.tidy(() => {
    opt.zeroGrad();
    const loss = forward(() => torch.crossEntropy(model.forward(x), y));
    loss.backward();
    opt.step();
  });
}
function inferStep(): void {
  torch.tidy(() => torch.inferenceMode(() => forward(() => model.forward(x))));
}
const step = mode === 'train' ? trainStep : inferStep;
if (mode === 'infer') model.eval();
for (let i = 0; i < Number(warmup); i++) step();
const t0 = process.hrtime.bigint();
for (let i = 0; i < Number(steps); i++) step();
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(JSON.stringify({ imagesPerSec: (Number(steps) * Number(batch)) / secs, peakRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
