"""gentrain operator: launches, watches and heals GenerativeTrainingJobs."""
