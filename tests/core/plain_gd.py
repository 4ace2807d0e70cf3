"""Plain gradient descent with the optimizer interface optimkit's runners drive (train(),
landscapes.run()): the simplest optimizer, as a stand-in where the test is about the runner."""


class GD:
    def __init__(self, params, lr):
        self.params, self.lr = params, lr

    def step(self, grads):
        for p, g in zip(self.params, grads):
            p -= self.lr * g


def gd(lr):
    return lambda params: GD(params, lr)
