package kernels

// Optim holds the optimizer and policy-loss kernels.
type Optim interface{}
