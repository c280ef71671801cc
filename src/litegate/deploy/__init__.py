"""Running litegate beyond one in-process server: file-to-file batches answered by the app in
process, the Ray executor for those lines, and Ray Serve replicas of the whole app."""
