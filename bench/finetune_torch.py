"""The original ImageNet evaluation loop (finetune_imgnet.py + utils.py's train), on the CPU: the same
model (torchvision's resnext, fc replaced by Linear(2048, n_out)), the trunk frozen with
set_parameter_requires_grad and a new Linear(2048, 1000) head for --freeze-trunk (the linear probe),
Adam, CrossEntropyLoss, RandomResizedCrop(224) + flip augmentation, ImageFolder and a shuffling
DataLoader, with `.cuda()` / DataParallel removed. One epoch of training; then the checkpoint saved
as the original does. Prints one JSON line: {"images", "seconds", "data_seconds", "acc1"} (seconds:
the epoch's training loop, without the save).
usage: finetune_torch.py --traindir DIR --model resnext50_32x4d --batch-size B --workers W --threads T [--freeze-trunk] [--out DIR]
"""
import argparse
import json
import os
import time

import torch
import torchvision.datasets as datasets
import torchvision.models as models
import torchvision.transforms as transforms

# utils.py's train (without .cuda() and printing) and set_seed, which both original scripts call
from train_tc_torch import set_seed, train


def set_parameter_requires_grad(model):
    """finetune_imgnet.py's helper, for a model without the DataParallel wrapper"""
    for param in model.parameters():
        param.requires_grad = False
    for param in model.fc.parameters():
        param.requires_grad = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--traindir', required=True)
    p.add_argument('--model', default='resnext50_32x4d')
    p.add_argument('--n_out', type=int, default=1000)
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--lr', type=float, default=0.001)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--freeze-trunk', action='store_true')
    p.add_argument('--out', default='.')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    set_seed(a.seed)
    model = models.__dict__[a.model](pretrained=False)
    model.fc = torch.nn.Linear(in_features=2048, out_features=a.n_out, bias=True)
    if a.freeze_trunk:
        set_parameter_requires_grad(model)
        model.fc = torch.nn.Linear(in_features=2048, out_features=1000, bias=True)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), a.lr, weight_decay=0.0)
    normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    train_dataset = datasets.ImageFolder(a.traindir, transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        normalize,
    ]))
    # pin_memory=True in the original only matters for the copy to a GPU
    train_loader = torch.utils.data.DataLoader(train_dataset, batch_size=a.batch_size, shuffle=True, num_workers=a.workers)
    t0 = time.time()
    acc1, n, data_seconds = train(train_loader, model, criterion, optimizer, 0)
    seconds = time.time() - t0
    torch.save({'acc1_list': [acc1], 'val_acc1_list': [], 'model_state_dict': model.state_dict(),
                'optimizer_state_dict': optimizer.state_dict()},
               os.path.join(a.out, 'ImageNet_{}_{}_{}.tar'.format(a.freeze_trunk, 1.0, a.seed)))
    print(json.dumps({'images': n, 'seconds': seconds, 'data_seconds': data_seconds, 'acc1': float(acc1)}), flush=True)


if __name__ == '__main__':
    main()
