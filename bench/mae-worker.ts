// One MAE training step configuration in its own process (so peak resident memory is its own), as
// train-mae runs it: models.createMae, AdamW(betas 0.9, 0.95) over weightDecayGroups(model, 0.05),
// the loss of model.run(images, maskRatio), backward, step; each step in its own scope.
// node dist/bench/mae-worker.js MODEL BATCH SIZE THREADS STEPS WARMUP [MASK_RATIO]
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import * as optim from '../src/optim/index.js';
import { weightDecayGroups } from '../src/experiments/mae.js';

const [name = 'mae_vit_small_patch16', batch = '4', size = '224', threads = '2', steps = '3', warmup = '1', ratio = '0.75'] = process.argv.slice(2);
torch.setNumThreads(Number(threads));
torch.manualSeed(0);
const model = models.createMae(name, { imgSize: Number(size) });
const opt = new optim.AdamW(weightDecayGroups(model, 0.05), { lr: 1.5e-4, betas: [0.9, 0.95] });
const x = torch.randn(Number(batch), 3, Number(size), Number(size)).keep();
model.train();

function step(): void {
  torch.tidy(() => {
    opt.zeroGrad();
    const loss = model.run(x, Number(ratio)).loss;
    loss.backward();
    opt.step();
  });
}
for (let i = 0; i < Number(warmup); i++) step();
const t0 = process.hrtime.bigint();
for (let i = 0; i < Number(steps); i++) step();
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(JSON.stringify({ imagesPerSec: (Number(steps) * Number(batch)) / secs, peakRssMiB: process.resourceUsage().maxRSS / 1024,
  params: model.parameters().reduce((a, p) => a + p.numel(), 0) }) + '\n');
