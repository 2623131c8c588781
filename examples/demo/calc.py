"""A tiny module with a bug for the llm-mux demo to look at."""


def average(numbers):
    """Return the mean of a list of numbers."""
    total = 0
    for n in numbers:
        total += n
    return total / len(numbers) + 1
