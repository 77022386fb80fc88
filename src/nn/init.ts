// nn.init: PyTorch's parameter initialisers (in place, without recording gradients).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export type Nonlinearity = 'linear' | 'conv2d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu';
export type FanMode = 'fan_in' | 'fan_out';

export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv2d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
  }
}

/** [fanIn, fanOut] as PyTorch's _calculate_fan_in_and_fan_out. */
export function calculateFanInAndFanOut(t: Tensor): [number, number] {
  const s = t.shape;
  if (s.length < 2) throw new Error(`fan in and fan out need a tensor with at least 2 dimensions, got shape [${s.join(', ')}]`);
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return [s[1]! * receptive, s[0]! * receptive];
}

function fan(t: Tensor, mode: FanMode): number {
  const [fi, fo] = calculateFanInAndFanOut(t);
  return mode === 'fan_in' ? fi : fo;
}

export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  return torch.noGrad(() => t.uniform_(a, b));
}
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  return torch.noGrad(() => t.normal_(mean, std));
}
export function constant_(t: Tensor, value: number): Tensor {
  return torch.noGrad(() => t.fill_(value));
}
export function zeros_(t: Tensor): Tensor {
  return torch.noGrad(() => t.zero_());
}
export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

export interface KaimingOptions {
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}
export function kaimingUniform_(t: Tensor, o: KaimingOptions = {}): Tensor {
  const gain = calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0);
  const bound = Math.sqrt(3) * (gain / Math.sqrt(fan(t, o.mode ?? 'fan_in')));
  return uniform_(t, -bound, bound);
}
export function kaimingNormal_(t: Tensor, o: KaimingOptions = {}): Tensor {
  const gain = calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0);
  return normal_(t, 0, gain / Math.sqrt(fan(t, o.mode ?? 'fan_in')));
}
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const [fi, fo] = calculateFanInAndFanOut(t);
  const a = gain * Math.sqrt(6 / (fi + fo));
  return uniform_(t, -a, a);
}
export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  const [fi, fo] = calculateFanInAndFanOut(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fi + fo)));
}

/**
 * Normal(mean, std) truncated to [a, b] (PyTorch's trunc_normal_; defaults ±2 as there): draws are
 * redrawn until they fall inside, so the distribution is exact (the random stream is not PyTorch's).
 */
export function truncNormal_(t: Tensor, o: { mean?: number; std?: number; a?: number; b?: number } = {}): Tensor {
  const mean = o.mean ?? 0;
  const std = o.std ?? 1;
  const a = o.a ?? -2;
  const b = o.b ?? 2;
  if (!(a < b)) throw new RangeError(`truncNormal_: need a < b, got a=${a}, b=${b}`);
  return torch.noGrad(() => torch.tidy(() => {
    const n = t.numel();
    const out = new Float32Array(n);
    let filled = 0;
    while (filled < n) {
      const draw = torch.randn([Math.max(64, 2 * (n - filled))]).mul(std).add(mean).toTypedArray() as Float32Array;
      for (let i = 0; i < draw.length && filled < n; i++) if (draw[i]! >= a && draw[i]! <= b) out[filled++] = draw[i]!;
    }
    t.copy_(torch.fromTypedArray(out, t.shape));
    return t;
  }));
}
