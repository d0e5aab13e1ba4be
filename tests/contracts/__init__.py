"""One contract test suite per port, run by every adapter of it, real and fake.

Each module holds a base class of tests, `<Port>Contract`, that pytest does not collect on its
own (its name does not start with Test). An adapter's test module subclasses it as
`Test<Adapter>Contract` and provides the fixtures the base class names in its docstring; the
inherited tests then run against that adapter. A new adapter is proven by passing its port's
suite. The suites check what the ports' docstrings (application/ports/) promise, nothing more."""
