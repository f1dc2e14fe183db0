"""The HTTP job service: routes, guard, uploads, the job table, workers and the job kinds they run."""
