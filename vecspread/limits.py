"""The stated limits: the largest sizes a flag or a file may ask for, checked before anything is built.

Each bound is far above what the method needs (the paper's networks are 1024 wide, 2 deep; its codes
8 to 128 bits) and far below what would exhaust a machine or run without end. A request past a limit is
refused with one line naming the flag (or the file member) and the limit.
"""

#: vector dimension: an input's d, --dout, --dint, bits of a sign code
MAX_DIM = 1 << 16
#: rows of a matrix a file may hold
MAX_ROWS = 1 << 40
#: hidden layers of a network
MAX_HIDDEN_LAYERS = 64
#: weights and biases of a network (2^27 float32 = 512 MiB, before the optimiser's copies)
MAX_NETWORK_PARAMS = 1 << 27
#: -k neighbours per query, --kpos / --kneg, nphash --k
MAX_K = 100_000
#: training vectors per step, nphash proxies
MAX_BATCH = 1 << 20
#: training epochs
MAX_EPOCHS = 100_000
#: --threads (faiss and torch refuse or misbehave far below the int range)
MAX_THREADS = 256
#: --block-size: vectors per block (the block's memory is block_size x d x 4 bytes)
MAX_BLOCK_SIZE = 1 << 24
#: --seed and friends: numpy and torch take seeds of 32 bits
MAX_SEED = (1 << 32) - 1
#: hash tables of a table scan
MAX_TABLES = 4096
#: `vecspread atoms`: it counts lattices beyond what the codec stores (d <= 64, r^2 <= 512), up to these
#: (d = 128, r^2 = 1024 takes ~5 s; the count is a Python integer), and lists at most ATOMS_MAX_LISTED
ATOMS_MAX_DIM = 128
ATOMS_MAX_R2 = 1024
ATOMS_MAX_BITS = 4096
ATOMS_MAX_LISTED = 1_000_000
