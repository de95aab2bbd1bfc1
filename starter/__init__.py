"""The user's side of Ferry: the `ferry` CLI, the operations it calls, the embedded dev stack."""
