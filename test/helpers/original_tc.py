# The paper's train_tc.py (with its utils.py and multiroot_image_folder.py) as it behaves, on the CPU and
# without DataParallel's wrapper object (its `module.` keys are written as they are), for tests: set_seed,
# the seeded episode window, the model built with num_classes=n_out and its fc replaced, Adam, one pass
# per epoch, the checkpoint {acc1_list, model_state_dict, optimizer_state_dict} after every epoch with
# acc1_list values as top1.avg.cpu().numpy() (0-d float32 arrays). The architecture may be resnet18 here
# (the original offers the ResNeXts only) and images are not resized (tiny test frames).
# usage: original_tc.py OUT_DIR MODEL N_OUT CLASS_FRACTION SEED EPOCHS BATCH DATA_DIR...
import json, math, os, random, sys
import numpy as np
import torch, torchvision
import torchvision.transforms as T
from PIL import Image

out_dir, arch, n_out, fraction, seed, epochs, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
roots = sys.argv[8:]
EXT = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')
if 'AWTY_ORACLE_THREADS' in os.environ: torch.set_num_threads(int(os.environ['AWTY_ORACLE_THREADS']))

# set_seed
random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)

model = torchvision.models.__dict__[arch](num_classes=n_out)
model.fc = torch.nn.Linear(model.fc.in_features, n_out)
opt = torch.optim.Adam(model.parameters(), 0.0005, weight_decay=0.0)

# the dataset: episode folders of all roots as joined paths, sorted, a window of ceil(N * f) from a seeded start
episodes = []
for r in roots: episodes += [os.path.join(r, e.name) for e in os.scandir(r) if e.is_dir()]
episodes.sort()
num = math.ceil(len(episodes) * fraction)
start = random.randint(0, len(episodes) - num - 1)
print('Class start index:', start)
episodes = episodes[start:start + num]
samples = []
for label, ep in enumerate(episodes):
    for root, _, names in sorted(os.walk(ep, followlinks=True)):
        for name in sorted(names):
            if name.lower().endswith(EXT): samples.append((os.path.join(root, name), label))
tf = T.Compose([T.ToTensor(), T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
data = [(tf(Image.open(p).convert('RGB')), y) for p, y in samples]
loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True)

acc1_list = []
for epoch in range(epochs):
    model.train()
    correct_sum, count = None, 0
    for x, y in loader:
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        acc1 = out.topk(1, 1, True, True)[1].t().eq(y.view(1, -1)).reshape(-1).float().sum(0, keepdim=True).mul_(100.0 / y.size(0))[0]
        correct_sum = acc1 * y.size(0) if correct_sum is None else correct_sum + acc1 * y.size(0)
        count += y.size(0)
        opt.zero_grad(); loss.backward(); opt.step()
    acc1_list.append((correct_sum / count).cpu().numpy())
    sd = {'module.' + k: v for k, v in model.state_dict().items()}
    torch.save({'acc1_list': acc1_list, 'model_state_dict': sd, 'optimizer_state_dict': opt.state_dict()},
               os.path.join(out_dir, 'TC_SAYAVAKEPICUT_{}_{}_{}_epoch_{}.tar'.format(arch, fraction, seed, epoch)))
json.dump({'start': start, 'episodes': episodes, 'samples': samples, 'acc1': [float(a) for a in acc1_list],
           'acc1_types': [type(a).__name__ + ':' + str(getattr(a, 'dtype', '')) + ':' + str(getattr(a, 'shape', '')) for a in acc1_list]},
          open(os.path.join(out_dir, 'original.json'), 'w'))
