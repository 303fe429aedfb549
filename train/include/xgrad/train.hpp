#pragma once
/// \file
/// Everything for writing a training script: datasets, splits and batches, text
/// vocabularies, progress bars, CSV metrics, checkpoints and plots, and fit with its callbacks.
#include <xgrad/train/callbacks.hpp>
#include <xgrad/train/checkpoint.hpp>
#include <xgrad/train/data.hpp>
#include <xgrad/train/fit.hpp>
#include <xgrad/train/loader.hpp>
#include <xgrad/train/logger.hpp>
#include <xgrad/train/metrics.hpp>
#include <xgrad/train/plot.hpp>
#include <xgrad/train/progress.hpp>
#include <xgrad/train/text.hpp>

/// \namespace xgrad::train
/// What every training script needs: data, loaders, metrics, logs, checkpoints and `fit`.
