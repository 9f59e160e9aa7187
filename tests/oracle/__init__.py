"""The refactoring oracle: the kernels that lazygrad generates for a fixed corpus of programs
(the examples in quick mode and the quick benchmark cases), as sources without comments,
kinds and reasons, recorded in corpus.json. A change to the pipeline's structure must leave
them identical (tests/test_oracle.py); a change that means to alter generated code
regenerates the corpus with `python -m tests.oracle --update` and says so in its commit.

The corpus is generated for one fixed target (256-bit CPU vectors, no probe, no tuning), so
it is the same on every machine.
"""
