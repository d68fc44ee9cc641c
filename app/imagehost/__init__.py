"""imagehost: the reference workload of cloudvirt.platform (upload, resize, serve images)."""
