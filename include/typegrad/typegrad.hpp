#pragma once
// typegrad: symbolic reverse-mode automatic differentiation over compile-time expression graphs.
// The training tools (data, parameters, optimizers, checkpoints, ...) are in typegrad/train.hpp.
#include "typegrad/core/expression.hpp"
#include "typegrad/core/grad.hpp"
#include "typegrad/core/graph.hpp"
#include "typegrad/ops/arithmetic.hpp"
#include "typegrad/ops/batch_norm.hpp"
#include "typegrad/ops/conv.hpp"
#include "typegrad/ops/layout.hpp"
#include "typegrad/ops/loss.hpp"
#include "typegrad/ops/matmul.hpp"
#include "typegrad/ops/pool.hpp"
#include "typegrad/ops/reduce.hpp"
#include "typegrad/ops/softmax.hpp"
#include "typegrad/ops/spatial_options.hpp"
#include "typegrad/ops/unary.hpp"
#include "typegrad/runtime/program.hpp"
#include "typegrad/tensor.hpp"
