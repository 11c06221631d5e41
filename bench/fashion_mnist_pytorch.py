#!/usr/bin/python3
"""fashion_mnist_cnn's (or, with --net resnet, fashion_mnist_resnet's) network, data and optimizer
in PyTorch: the reference for bench/fashion_mnist_vs_pytorch.sh.

    /usr/bin/python3 bench/fashion_mnist_pytorch.py [--net cnn|resnet] [--epochs 5] [--batch 64]
        [--lr 1e-3 (cnn) / 2e-3 (resnet)] [--seed 1] [--threads 2]
        [--data-dir /usr/share/datasets/fashion-mnist] [--flush-denormal]

Same as the C++ example: images standardised with mean 0.2860 / stddev 0.3530, shuffled each
epoch, batch 64 (smaller last batch kept); conv 3x3 (32, same) -> relu -> max_pool 2 -> conv 3x3
(64, same) -> relu -> max_pool 2 -> flatten -> dense 128 -> relu -> dense 10, cross-entropy; He-normal
init of convs and the first dense layer, Glorot-uniform of the last, zero biases; Adam with the
learning rate cosine-decayed per step over the run. Data are read from the IDX .gz files with
gzip + numpy. Prints one line per epoch: train loss, test accuracy, seconds (training only, like
the C++ example's first figure). The network runs in PyTorch's default contiguous (N, C, H, W)
format, as a user would write it.

--net resnet: examples/nets/small_resnet.hpp's network (stem conv 3x3 16 - bn - relu, two
identity and two downsampling basic blocks of 16, 32, 64 channels with 1x1 projection shortcuts,
global average pooling, dense 10; convs without bias, He-normal, bn gamma 1 beta 0 momentum 0.1,
dense Glorot-uniform) trained with AdamW (weight decay 0.01), as examples/fashion_mnist_resnet.cpp.

--flush-denormal: torch.set_flush_denormal(True), as typegrad's kernels run (FTZ/DAZ). PyTorch's
default keeps denormal arithmetic, which on this network costs it an order of magnitude once
the training state decays into the subnormal range (docs/benchmarks.md).
"""
import argparse
import gzip
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (magic {magic:#010x})")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(magic & 0xFF)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def load(data_dir, prefix):
    def find(name):
        for candidate in (name + ".gz", name):
            if os.path.exists(os.path.join(data_dir, candidate)):
                return os.path.join(data_dir, candidate)
        raise FileNotFoundError(os.path.join(data_dir, name))
    images = read_idx(find(f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(f"{prefix}-labels-idx1-ubyte"))
    x = (torch.from_numpy(images.astype(np.float32)) / 255.0 - 0.2860) / 0.3530
    return x.unsqueeze(1).contiguous(), torch.from_numpy(labels.astype(np.int64))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.dense1 = nn.Linear(7 * 7 * 64, 128)
        self.dense2 = nn.Linear(128, 10)
        for m in (self.conv1, self.conv2, self.dense1):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.dense2.weight)
        nn.init.zeros_(self.dense2.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.dense2(F.relu(self.dense1(torch.flatten(x, 1))))


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.projection = None
        if stride != 1:
            self.projection = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(h + (x if self.projection is None else self.projection(x)))


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.blocks = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 32, 1),
                                    BasicBlock(32, 64, 2))
        self.dense = nn.Linear(64, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.xavier_uniform_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)

    def forward(self, x):
        x = self.blocks(F.relu(self.stem_bn(self.stem(x))))
        return self.dense(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", choices=["cnn", "resnet"], default="cnn")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW's, for --net resnet")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--flush-denormal", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(a.flush_denormal)
    torch.manual_seed(a.seed)

    train_x, train_y = load(a.data_dir, "train")
    test_x, test_y = load(a.data_dir, "t10k")
    if a.net == "resnet":
        model = SmallResNet()
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr or 2e-3, weight_decay=a.weight_decay)
    else:
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=a.lr or 1e-3)
    steps_per_epoch = math.ceil(len(train_x) / a.batch)
    total = a.epochs * steps_per_epoch
    # Like train::cosine_schedule{lr, total}: a half cosine from lr at step 0 to 0 at `total`.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, total) / total)))
    generator = torch.Generator().manual_seed(a.seed)
    for epoch in range(a.epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        loss_sum, seen = 0.0, 0
        for i in range(0, len(train_x), a.batch):
            idx = order[i:i + a.batch]
            x, y = train_x[idx], train_y[idx]  # the batch gathered each step, as the C++ batcher does
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
        train_seconds = time.perf_counter() - start
        model.eval()
        correct, test_loss = 0, 0.0
        with torch.no_grad():
            for i in range(0, len(test_x), 250):  # evaluation batches of 250, as the C++ example
                logits = model(test_x[i:i + 250])
                test_loss += F.cross_entropy(logits, test_y[i:i + 250], reduction="sum").item()
                correct += (logits.argmax(1) == test_y[i:i + 250]).sum().item()
        print(f"epoch {epoch + 1}/{a.epochs}  train loss {loss_sum / seen:.4f}  test loss {test_loss / len(test_x):.4f}"
              f"  test accuracy {correct / len(test_x):.4f}  {train_seconds:.1f} s"
              f" (+{time.perf_counter() - start - train_seconds:.1f} s eval)", flush=True)


if __name__ == "__main__":
    main()
