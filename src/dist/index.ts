// torch.distributed for awty: the launch environment, process groups over c10d, data-parallel
// gradient reduction, and the launcher behind `awty launch`.
export * from './env.js';
export * from './process-group.js';
export * from './ddp.js';
export { launch, type LaunchOptions, type LaunchResult } from './launch.js';
export { SyncBatchNorm, convertSyncBatchnorm } from './sync-batchnorm.js';
