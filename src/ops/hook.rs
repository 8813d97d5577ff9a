//! `keys hook install`: the pre-commit hook that runs `keys check --staged`.
