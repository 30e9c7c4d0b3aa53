"""The bm25 queries of the scale benchmarks (`scale.py`, `query_loop.py`):
30 queries for Rust code and docs, the list `rlm-engine-bench scale` asks
too (`bench/src/scale.rs`)."""

BM25_QUERIES = [
    "parse command line arguments", "hash map entry api", "async runtime spawn task",
    "read file to string", "serialize struct to json", "mutex lock poisoned",
    "iterator adapter map filter", "thread pool join handle", "tcp stream connect timeout",
    "utf8 string validation error", "borrow checker lifetime", "trait object dynamic dispatch",
    "regex match captures", "random number generator seed", "channel send receive",
    "error handling result question mark", "derive debug clone", "unsafe raw pointer dereference",
    "vector capacity reserve", "sort by key comparator", "http request headers",
    "environment variable config", "path join canonicalize", "atomic ordering compare exchange",
    "format macro display", "buffered writer flush", "signal handler terminate process",
    "timestamp duration since epoch", "base64 encode decode", "sha256 digest bytes",
]
