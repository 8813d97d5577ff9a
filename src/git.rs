//! Reading the git index and hooks directory for `keys check --staged` and `keys hook`.
