#pragma once
// typegrad's training tools: data (IDX files, batches), parameters and initialisers, optimizers,
// schedules, metrics, progress display and checkpoints. Separate from typegrad.hpp, which stays
// light for code that only builds and differentiates graphs. See docs/training.md.
#include "typegrad/data/batches.hpp"
#include "typegrad/data/idx.hpp"
#include "typegrad/train/checkpoint.hpp"
#include "typegrad/train/init.hpp"
#include "typegrad/train/metrics.hpp"
#include "typegrad/train/optimizer.hpp"
#include "typegrad/train/parameters.hpp"
#include "typegrad/train/progress.hpp"
#include "typegrad/train/random.hpp"
#include "typegrad/train/schedule.hpp"
