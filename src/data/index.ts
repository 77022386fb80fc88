// The data layer: video -> episodes, folder and shard datasets with a compact index, transforms
// with torchvision's parameter distributions, samplers, and the parallel loader.
export { extract, listVideos, seedStep, MANIFEST, SUMMARY } from './extract.js';
export type { ExtractOptions, ExtractProgress, ExtractSummary } from './extract.js';
export { probeVideo, filterGraph, streamFrames } from './ffmpeg.js';
export type { VideoInfo, FrameFilter } from './ffmpeg.js';
export { episodeName, frameName, compareCodePoints } from './names.js';
export { ShardWriter, readShardFolder, shardName, SHARD_LIST } from './shards.js';
export type { ShardList, ShardIndex } from './shards.js';
export { FileIndex, IMG_EXTENSIONS, hasImageExtension, walkClass } from './findex.js';
export { ImageFolder, MultirootImageFolder, ShardDataset, Subset, fewShot, fewShotIndices, perClassIndices, selectClasses, selectEpisodes, EPISODE_SELECTIONS, type EpisodeSelection, type EpisodeChoice, type SelectionOptions } from './datasets.js';
export type { Dataset, ImageSource, FolderOptions } from './datasets.js';
export * as transforms from './transforms.js';
export { tcAugmentation, imagenetTrain, imagenetVal, noAugmentation, IMAGENET_MEAN, IMAGENET_STD } from './transforms.js';
export type { TransformSpec, Op } from './transforms.js';
export { SequentialSampler, RandomSampler, SubsetRandomSampler, DistributedSampler, ShardedSampler } from './samplers.js';
export type { Sampler, DistributedOptions } from './samplers.js';
export { DataLoader } from './loader.js';
export type { Batch, LoaderOptions } from './loader.js';
export { Rng, MT19937, NumpyRandomState, PythonRandom, roundHalfEven } from './rng.js';
export { parseIdx, readIdx, idxToClassFolders, classFolderName, fashionMnistFiles, FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, IDX_MANIFEST } from './idx.js';
export type { IdxArray, ClassFolderOptions, ClassFolderSummary } from './idx.js';
export { buildCorpus, renderCameraPath, cameraPath, OPENCV_DATA_DIR, OPENCV_VIDEOS, CORPUS_MANIFEST } from './corpus.js';
export type { CorpusOptions, CorpusSummary, CorpusVideo } from './corpus.js';
