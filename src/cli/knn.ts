// awty knn: k-nearest-neighbour classification on the frozen features of a trunk checkpoint (DINO's
// eval_knn.py), with finetune's trunk and data flags; writes a results file for awty figure1 --results.
import type { Command } from 'commander';
import { int, num } from './parse.js';
import { isDevice } from '../torch/device.js';
import { KNN_DEFAULTS } from '../experiments/defaults.js';

export function registerKnn(program: Command): void {
  const d = KNN_DEFAULTS;
  program
    .command('knn')
    .description('kNN evaluation of a trunk checkpoint on ImageNet folders: cosine similarity of frozen features, k nearest vote with weight exp(sim / T) (DINO eval_knn.py)')
    .requiredOption('--imgnet-traindir <dir>', 'training images in class-folder layout (the neighbours)')
    .requiredOption('--imgnet-valdir <dir>', 'validation images in class-folder layout (classified)')
    .option('--model <name>', 'architecture', d.model)
    .option('--n_out <n>', 'head size of the checkpoint being loaded', int(), d.nOut)
    .option('--resume <file>', "the trunk checkpoint, any finetune --resume takes ('' = random weights)", d.resume)
    .option('--k <n>', 'neighbours that vote', int(), d.k)
    .option('--temperature <T>', 'temperature of the votes exp(similarity / T)', num(), d.temperature)
    .option('--frac-retained <f>', "fraction of the training set used as neighbours (finetune's few-shot subset)", num(), d.fracRetained)
    .option('-b, --batch-size <n>', 'batch size of feature extraction', int(), d.batchSize)
    .option('--seed <n>', 'seed (few-shot subset)', int(), d.seed)
    .option('-j, --workers <n>', 'data-loading worker threads', int(), d.workers)
    .option('--out <dir>', 'where the results file goes', d.out)
    .option('--threads <n>', 'libtorch intra-op threads', int())
    .option('--device <d>', 'cpu, cuda or cuda:N', d.device)
    .option('--image-size <px>', "both sets: Resize(round(px x 256/224)) + CenterCrop(px), finetune's validation transform", int(), d.imageSize)
    .option('--on-bad-image <mode>', "an unreadable image: 'fail' (default) stops naming it, 'skip' leaves it out", d.onBadImage)
    .option('--hours <h>', 'hours of video the trunk was trained on (default: the run record beside --resume)', num())
    .option('--condition <name>', 'condition in the results file (default knn-k<k>, with -T<T> and -frac<f> when not the defaults)')
    .option('--overwrite', 'replace a results file (or feature dump) of the same name (default: refuse before any work)', d.overwrite)
    .option('--dump-features <dir>', 'also save the normalised features and labels there (trainfeat.pth, testfeat.pth, trainlabels.pth, testlabels.pth, as DINO)')
    .action(async (o: Record<string, unknown>) => {
      const device = o.device as string;
      if (!isDevice(device)) throw new Error(`--device must be cpu, cuda or cuda:N, got ${device}`);
      const { main } = await import('../experiments/knn.js');
      await main({
        imgnetTraindir: o.imgnetTraindir as string, imgnetValdir: o.imgnetValdir as string, model: o.model as string,
        nOut: o.n_out as number, resume: o.resume as string, k: o.k as number, temperature: o.temperature as number,
        fracRetained: o.fracRetained as number, batchSize: o.batchSize as number, seed: o.seed as number,
        workers: o.workers as number, out: o.out as string, threads: o.threads as number | undefined, device,
        imageSize: o.imageSize as number, onBadImage: o.onBadImage as 'fail' | 'skip', hours: o.hours as number | undefined,
        condition: o.condition as string | undefined, dumpFeatures: o.dumpFeatures as string | undefined, overwrite: o.overwrite as boolean,
      });
    });
}
