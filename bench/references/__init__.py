"""Reference servers the side-by-side row measures this API's functions against (copies of ../shared/bench)."""
