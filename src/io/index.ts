// The io layer: PyTorch checkpoint formats (torch.save zip + pickle, legacy torch.save, safetensors)
// read and written in TypeScript, atomic saves, and their bridge to engine tensors, modules and
// optimizers.

export * from './core.js';
export {
  load, save, loadSafetensors, saveSafetensors,
  asStateDict, stripPrefix, addPrefix, matchPrefix, loadStateDictInto, modelStateDict,
  optimizerStateToPickle, optimizerStateFromPickle, disposeTree,
  type LoadOptions, type SaveOptions,
} from './engine.js';
export { RUN_RECORD_SCHEMA, MAE_RUN_RECORD_SCHEMA, runRecordPath, readRunRecord, writeRunRecord, readHours } from './run-record.js';
export type { RunRecord, EpochRecord, MaeEpochRecord, ExtractProvenance } from './run-record.js';
