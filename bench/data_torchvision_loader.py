"""torchvision's ImageFolder + DataLoader (PIL) with the paper's TC augmentation: the baseline of the
loader benchmark. usage: data_torchvision_loader.py ROOT --workers W --batch-size B [--epochs E]
prints one JSON line per epoch: {"epoch": e, "images": n, "seconds": s}; with --interleave, prints
{"ready": true} once set up and runs each epoch when a line arrives on stdin (so that a caller can
alternate its own epochs with these under the same machine load)"""
import argparse
import json
import random
import sys
import time

import torch
import torchvision.datasets as datasets
import torchvision.transforms as transforms
from PIL import ImageFilter


class GaussianBlur(object):
    def __init__(self, sigma=[.1, 2.]):
        self.sigma = sigma

    def __call__(self, x):
        return x.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.sigma[0], self.sigma[1])))


p = argparse.ArgumentParser()
p.add_argument('root')
p.add_argument('--workers', type=int, default=2)
p.add_argument('--batch-size', type=int, default=64)
p.add_argument('--epochs', type=int, default=1)
p.add_argument('--interleave', action='store_true')
a = p.parse_args()
torch.set_num_threads(1)
torch.manual_seed(1)
normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
tf = transforms.Compose([
    transforms.RandomResizedCrop(224, scale=(0.08, 1.0)),
    transforms.RandomApply([transforms.ColorJitter(0.9, 0.9, 0.9, 0.5)], p=0.9),
    transforms.RandomGrayscale(p=0.2),
    transforms.RandomApply([GaussianBlur([0.1, 2.0])], p=0.5),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
    normalize,
])
ds = datasets.ImageFolder(a.root, tf)
dl = torch.utils.data.DataLoader(ds, batch_size=a.batch_size, shuffle=True, num_workers=a.workers, persistent_workers=a.workers > 0)
if a.interleave:
    print(json.dumps({'ready': True}), flush=True)
for e in range(a.epochs):
    if a.interleave and not sys.stdin.readline():
        break
    t0 = time.time()
    n = 0
    for x, y in dl:
        n += x.shape[0]
    print(json.dumps({'epoch': e, 'images': n, 'seconds': time.time() - t0}), flush=True)
