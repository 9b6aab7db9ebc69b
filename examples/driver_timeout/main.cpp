// examples/driver_timeout — placeholder; the service comes in the next commits.
int main() { return 0; }
