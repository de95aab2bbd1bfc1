"""The Ferry worker process: which queue it polls, which workflows and activities it hosts."""
