// optim: optimizers (Adam, AdamW, SGD) and learning-rate schedulers with torch.optim's names,
// semantics and state-dict layout.
export {
  Optimizer,
  toSnakeCase,
  toCamelCase,
  type BaseGroupOptions,
  type ParamGroup,
  type ParamGroupSpec,
  type Params,
  type ParamState,
  type OptimizerStateDict,
  type StateDictGroup,
} from './optimizer.js';
export { Adam, AdamW, type AdamGroupOptions, type AdamOptions, type AdamWGroupOptions, type AdamWOptions } from './adam.js';
export { SGD, type SGDGroupOptions, type SGDOptions } from './sgd.js';
export { LRScheduler, MultiStepLR, CosineAnnealingLR, type SchedulerStateDict } from './lr_scheduler.js';
export * as lrScheduler from './lr_scheduler.js';
export { GradScaler, updateScale, type GradScalerOptions, type GradScalerStateDict } from './grad-scaler.js';
