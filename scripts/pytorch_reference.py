"""The two training steps of notebooks 2 and 3 in PyTorch, timed: the other side of `make compare`.

scripts/benchmark.py runs this with the Python of a separate virtual environment that has torch
(torch is not a dependency of this project), passing the shipped configurations' sizes:

    python3.11 -m venv ../torch-venv && ../torch-venv/bin/pip install torch
    ../torch-venv/bin/python scripts/pytorch_reference.py charlstm --vocab 86 --embed 128 --hidden 640 --layers 2
    ../torch-venv/bin/python scripts/pytorch_reference.py dcgan --batch 64 --nz 150 --ngf 64 --ndf 64

The models have the layers, shapes and trainable parameters of the notebooks' (Gluon's layers have
biases by default, so these do too); the data is random, as throughput does not depend on it.
Prints one line, `<model> <setting>=<value> ... <unit>_per_s=<value>`; with --count-parameters,
`<model> <network>=<trainable parameters> ...` instead, without training.
"""
import argparse
import time

import torch
from torch import nn

RECURRENT = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": lambda *args, **kwargs: nn.RNN(*args, nonlinearity="relu", **kwargs)}


class CharModel(nn.Module):
    """Notebook 2's GluonRNNModel: embedding -> dropout -> recurrent layers -> dropout -> decoder."""

    def __init__(self, mode, vocab, embed, hidden, layers, dropout):
        super().__init__()
        self.encoder, self.drop = nn.Embedding(vocab, embed), nn.Dropout(dropout)
        self.rnn = RECURRENT[mode](embed, hidden, layers, dropout=dropout)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, inputs, state):
        output, state = self.rnn(self.drop(self.encoder(inputs)), state)
        return self.decoder(self.drop(output)), state


def dcgan(nz, ngf, ndf):
    """Notebook 3's make_generator(ngf) and make_discriminator(ndf)."""
    generator = [nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0), nn.BatchNorm2d(ngf * 8), nn.ReLU()]  # 1x1 -> 4x4
    for channels in (ngf * 4, ngf * 2, ngf):                                                   # -> 8, 16, 32
        generator += [nn.ConvTranspose2d(channels * 2, channels, 4, 2, 1), nn.BatchNorm2d(channels), nn.ReLU()]
    generator += [nn.ConvTranspose2d(ngf, 3, 4, 2, 1), nn.Tanh()]                               # -> 64x64
    discriminator = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]                             # 64 -> 32
    for channels in (ndf * 2, ndf * 4, ndf * 8):                                                # -> 16, 8, 4
        discriminator += [nn.Conv2d(channels // 2, channels, 4, 2, 1), nn.BatchNorm2d(channels), nn.LeakyReLU(0.2)]
    discriminator += [nn.Conv2d(ndf * 8, 1, 4, 1, 0)]                                           # -> 1 score
    return nn.Sequential(*generator), nn.Sequential(*discriminator)


def trainable(*networks):
    return [sum(p.numel() for p in network.parameters() if p.requires_grad) for network in networks]


def time_steps(step, warmup, steps):
    """Seconds that `steps` calls of step() take, after `warmup` calls."""
    for _ in range(warmup):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - started


def charlstm(a):
    model = CharModel(a.mode, a.vocab, a.embed, a.hidden, a.layers, a.dropout)
    if a.count_parameters:
        return f"model={trainable(model)[0]}"
    optimizer, loss_function = torch.optim.Adam(model.parameters(), lr=a.lr), nn.CrossEntropyLoss()
    data = torch.randint(0, a.vocab, (a.seq * (a.warmup + a.batches) + 1, a.batch))
    zeros = torch.zeros(a.layers, a.batch, a.hidden)
    state = [(zeros, zeros.clone()) if a.mode == "lstm" else zeros]
    window = iter(range(0, len(data) - 1, a.seq))

    def step():  # notebook 2's train_one_epoch, one window: the state carried over, detached
        start = next(window)
        inputs, targets = data[start:start + a.seq], data[start + 1:start + a.seq + 1]
        carried = tuple(t.detach() for t in state[0]) if a.mode == "lstm" else state[0].detach()
        scores, state[0] = model(inputs, carried)
        loss = loss_function(scores.reshape(-1, a.vocab), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        optimizer.step()
        loss.item()

    seconds = time_steps(step, a.warmup, a.batches)
    return f"threads={torch.get_num_threads()} chars_per_s={a.batches * a.seq * a.batch / seconds:.0f}"


def dcgan_step(a):
    generator, discriminator = dcgan(a.nz, a.ngf, a.ndf)
    if a.count_parameters:
        return "generator={} discriminator={}".format(*trainable(generator, discriminator))
    real = torch.rand(a.batch, 3, 64, 64) * 2 - 1
    if a.memory_format == "channels_last":  # PyTorch's advice for convolutions on a CPU
        generator, discriminator = generator.to(memory_format=torch.channels_last), discriminator.to(
            memory_format=torch.channels_last)
        real = real.contiguous(memory_format=torch.channels_last)
    adam = {"lr": a.lr, "betas": (a.beta1, 0.999)}
    optimizer_g, optimizer_d = (torch.optim.Adam(n.parameters(), **adam) for n in (generator, discriminator))
    loss_function, ones, zeros = nn.BCEWithLogitsLoss(), torch.ones(a.batch), torch.zeros(a.batch)

    def step():  # notebook 3's train_step: D's turn, then G's turn on the same fakes, without D's weights' gradients
        fakes = generator(torch.randn(a.batch, a.nz, 1, 1))
        loss_d = (loss_function(discriminator(real).reshape(-1), ones) +
                  loss_function(discriminator(fakes.detach()).reshape(-1), zeros))
        optimizer_d.zero_grad()
        loss_d.backward()
        optimizer_d.step()
        discriminator.requires_grad_(False)
        loss_g = loss_function(discriminator(fakes).reshape(-1), ones)
        optimizer_g.zero_grad()
        loss_g.backward()
        optimizer_g.step()
        discriminator.requires_grad_(True)
        loss_d.item()

    seconds = time_steps(step, a.warmup, a.batches)
    return (f"memory_format={a.memory_format} threads={torch.get_num_threads()} "
            f"images_per_s={a.batches * a.batch / seconds:.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models = parser.add_subparsers(dest="model", required=True)
    lstm = models.add_parser("charlstm")
    lstm.add_argument("--mode", default="lstm", choices=sorted(RECURRENT))
    gan = models.add_parser("dcgan")
    gan.add_argument("--memory-format", default="channels_last", choices=["channels_last", "contiguous"])
    for model, options in ((lstm, dict(vocab=86, embed=128, hidden=640, layers=2, seq=100, batch=32, batches=30,
                                       warmup=3, dropout=0.5, lr=2e-3, clip=1.0)),
                           (gan, dict(batch=64, nz=150, ngf=64, ndf=64, batches=30, warmup=3, lr=2e-4, beta1=0.5))):
        for name, default in options.items():
            model.add_argument(f"--{name}", type=type(default), default=default)
        model.add_argument("--count-parameters", action="store_true", help="print the trainable parameters only")
    a = parser.parse_args()
    torch.manual_seed(0)
    print(a.model, (charlstm if a.model == "charlstm" else dcgan_step)(a), flush=True)


if __name__ == "__main__":
    main()
