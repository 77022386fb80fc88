"""The original temporal-classification loop (train_tc.py + utils.py's train, accuracy, AverageMeter),
on the CPU: the same model, loss, optimizer, augmentation and DataLoader, with `.cuda()` removed and
the dataset a multi-root image folder over sorted episode paths. One or more epochs; after each it
saves the checkpoint as the original does and prints one JSON line: {"epoch", "images", "seconds",
"data_seconds", "acc1"} (seconds: the epoch's training loop, without the save).
With --nproc N (N > 1): the same loop as N data-parallel processes (torch.multiprocessing.spawn, gloo
on loopback, DistributedDataParallel with its defaults, DistributedSampler with the seed), the global
batch B split into B / N per process and --threads threads each; rank 0 prints the line, with the
global image count.
usage: train_tc_torch.py --data-dirs DIR... --model resnet18 --n_out N --batch-size B --workers W --threads T [--epochs E] [--out DIR] [--nproc N --port P]
"""
import argparse
import json
import os
import random
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchvision
import torchvision.transforms as transforms
from PIL import Image, ImageFilter


class GaussianBlur(object):
    """Gaussian blur augmentation in SimCLR (utils.py)"""

    def __init__(self, sigma=[.1, 2.]):
        self.sigma = sigma

    def __call__(self, x):
        sigma = random.uniform(self.sigma[0], self.sigma[1])
        x = x.filter(ImageFilter.GaussianBlur(radius=sigma))
        return x


class AverageMeter(object):
    def __init__(self, name, fmt=':f'):
        self.name = name
        self.fmt = fmt
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def accuracy(output, target, topk=(1,)):
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        res = []
        for k in topk:
            correct_k = correct[:k].contiguous().view(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


def pil_loader(path):
    with open(path, 'rb') as f:
        img = Image.open(f)
        return img.convert('RGB')


class MultirootImageFolder(torch.utils.data.Dataset):
    """Episode folders of all roots as full paths, sorted; every image a (path, episode index) sample."""

    def __init__(self, roots, transform):
        classes = []
        for d in roots:
            classes = classes + [os.path.join(d, e.name) for e in os.scandir(d) if e.is_dir()]
        classes.sort()
        self.classes = classes
        self.samples = []
        for i, c in enumerate(classes):
            for root, _, fnames in sorted(os.walk(c, followlinks=True)):
                for fname in sorted(fnames):
                    if fname.lower().endswith(IMG_EXTENSIONS):
                        self.samples.append((os.path.join(root, fname), i))
        self.transform = transform

    def __getitem__(self, index):
        path, target = self.samples[index]
        return self.transform(pil_loader(path)), target

    def __len__(self):
        return len(self.samples)


def train(train_loader, model, criterion, optimizer, epoch):
    """utils.train without .cuda() and printing; also sums the data time it measures"""
    data_time = AverageMeter('Data', ':6.3f')
    losses = AverageMeter('Loss', ':.4e')
    top1 = AverageMeter('Acc@1', ':6.2f')
    top5 = AverageMeter('Acc@5', ':6.2f')
    model.train()
    end = time.time()
    for i, (images, target) in enumerate(train_loader):
        data_time.update(time.time() - end)
        output = model(images)
        loss = criterion(output, target)
        acc1, acc5 = accuracy(output, target, topk=(1, 5))
        losses.update(loss.item(), images.size(0))
        top1.update(acc1[0], images.size(0))
        top5.update(acc5[0], images.size(0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        end = time.time()
    return top1.avg.cpu().numpy(), losses.count, data_time.sum


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--data-dirs', nargs='+', required=True)
    p.add_argument('--model', default='resnet18')
    p.add_argument('--n_out', type=int, required=True)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--lr', type=float, default=0.0005)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--out', default='.')
    p.add_argument('--nproc', type=int, default=1)
    p.add_argument('--port', type=int, default=29533)
    a = p.parse_args()
    if a.nproc > 1:
        mp.spawn(run, args=(a,), nprocs=a.nproc, join=True)
    else:
        run(0, a)


def run(rank, a):
    world = a.nproc
    if world > 1:
        os.environ['MASTER_ADDR'] = '127.0.0.1'
        os.environ['MASTER_PORT'] = str(a.port)
        dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(a.threads)
    set_seed(a.seed)
    model = torchvision.models.__dict__[a.model](pretrained=False, num_classes=a.n_out)
    model.fc = torch.nn.Linear(in_features=model.fc.in_features, out_features=a.n_out, bias=True)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), a.lr, weight_decay=0.0)
    normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    train_transforms = transforms.Compose([
        transforms.RandomResizedCrop(224, scale=(0.08, 1.0)),
        transforms.RandomApply([transforms.ColorJitter(0.9, 0.9, 0.9, 0.5)], p=0.9),
        transforms.RandomGrayscale(p=0.2),
        transforms.RandomApply([GaussianBlur([0.1, 2.0])], p=0.5),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        normalize,
    ])
    train_dataset = MultirootImageFolder(a.data_dirs, train_transforms)
    # pin_memory=True in the original only matters for the copy to a GPU
    sampler = torch.utils.data.distributed.DistributedSampler(train_dataset, num_replicas=world, rank=rank, shuffle=True, seed=a.seed) if world > 1 else None
    train_loader = torch.utils.data.DataLoader(train_dataset, batch_size=a.batch_size // world, shuffle=sampler is None, num_workers=a.workers, sampler=sampler)
    acc1_list = []
    for epoch in range(a.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
            dist.barrier()
        t0 = time.time()
        acc1, n, data_seconds = train(train_loader, model, criterion, optimizer, epoch)
        seconds = time.time() - t0
        acc1_list.append(acc1)
        if rank == 0:
            state = model.module.state_dict() if world > 1 else model.state_dict()
            torch.save({'acc1_list': acc1_list, 'model_state_dict': state, 'optimizer_state_dict': optimizer.state_dict()},
                       os.path.join(a.out, 'TC_torch_{}_epoch_{}.tar'.format(a.model, epoch)))
            print(json.dumps({'epoch': epoch, 'images': n * world, 'seconds': seconds, 'data_seconds': data_seconds, 'acc1': float(acc1)}), flush=True)
        if world > 1:
            dist.barrier()
    if world > 1:
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
