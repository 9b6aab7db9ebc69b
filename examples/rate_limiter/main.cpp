// examples/rate_limiter — placeholder; the service comes in the next commits.
int main() { return 0; }
