#pragma once
// Python programs that run inside the sandbox, compiled into the binary from their .py files by
// cmake/EmbedPython.cmake (one constant per src/*/*.py; add the declaration here).
namespace codex {

extern const char* const kProblemsExtractPy;  // src/data/problems_extract.py
extern const char* const kTraceRunPy;         // src/data/trace_run.py
extern const char* const kTraceHookPy;        // src/data/trace_hook.py

}  // namespace codex
