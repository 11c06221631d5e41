#pragma once
// The layout ops (docs/layout.md): reshape / flatten, concat, slice / pad, permute / transpose.
#include "typegrad/ops/concat.hpp"
#include "typegrad/ops/permute.hpp"
#include "typegrad/ops/reshape.hpp"
#include "typegrad/ops/slice.hpp"
