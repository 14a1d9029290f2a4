# The PyTorch reference script of the Keras mnist_transfer_cnn recipe, changed only in its inputs and
# outputs: the data directory, thread count, epochs and (optionally) the platform's split come from the
# command line, and each phase prints one JSON line, with the CPU seconds of all threads too (the
# machine may be shared). The recipe (model, Adadelta defaults, batch 128, frozen-feature transfer)
# is unchanged.
#   python3 torch_transfer.py DATA_DIR THREADS [--epochs 5] [--split-index split.json] [--seeds 1]
# --seeds N: the transfer phase N times from the same pretrained model, head reset to its pretrained
# weights and torch.manual_seed(seed) (shuffles, dropout) for seed 0..N-1, one line each.
# --split-index: {"train": [...], "test": [...]} row indices into X.npy/Y.npy (written by
# bench/recipe.ts: the platform's split, first 80% of each digit = train), so that every contestant
# trains and tests on the same digits. Without it: the reference's own seeded 80/20 split of each half.
import argparse, copy, json, os, time, numpy as np, torch, torch.nn as nn
ap=argparse.ArgumentParser(); ap.add_argument('data_dir'); ap.add_argument('threads',type=int,nargs='?',default=2)
ap.add_argument('--epochs',type=int,default=5); ap.add_argument('--split-index'); ap.add_argument('--seeds',type=int,default=1)
args=ap.parse_args()
torch.set_num_threads(args.threads)
X=np.load(os.path.join(args.data_dir,'X.npy')); Y=np.load(os.path.join(args.data_dir,'Y.npy'))
if args.split_index:
    with open(args.split_index) as f: index=json.load(f)
    tr=np.zeros(len(X),bool); tr[index['train']]=True; te=np.zeros(len(X),bool); te[index['test']]=True
else:
    rng=np.random.default_rng(0); idx=rng.permutation(len(X)); X=X[idx]; Y=Y[idx]
def split(lo):
    m=(Y>=lo)&(Y<lo+5)
    if args.split_index:
        t=lambda k: (torch.tensor(X[k]).unsqueeze(1), torch.tensor(Y[k]-lo,dtype=torch.long))
        return (*t(m&tr), *t(m&te))
    x=torch.tensor(X[m]).unsqueeze(1); y=torch.tensor(Y[m]-lo,dtype=torch.long); n=int(len(x)*0.8); return x[:n],y[:n],x[n:],y[n:]
feat=nn.Sequential(nn.Conv2d(1,32,3),nn.ReLU(),nn.Conv2d(32,32,3),nn.ReLU(),nn.MaxPool2d(2),nn.Dropout(0.25),nn.Flatten())
cls=nn.Sequential(nn.Linear(32*12*12,128),nn.ReLU(),nn.Dropout(0.5),nn.Linear(128,5))
model=nn.Sequential(feat,cls)
def train(x,y,xt,yt,params,epochs=args.epochs):
    opt=torch.optim.Adadelta(params); t=time.time(); c=time.process_time()
    for e in range(epochs):
        model.train(); p=torch.randperm(len(x))
        for i in range(0,len(x),128):
            b=p[i:i+128]; opt.zero_grad(); loss=nn.functional.cross_entropy(model(x[b]),y[b]); loss.backward(); opt.step()
    dt=time.time()-t; cpu=time.process_time()-c; model.eval()
    with torch.no_grad(): acc=(model(xt).argmax(1)==yt).float().mean().item()
    return dt, acc, len(x)*epochs/dt, len(x), len(xt), cpu
def report(phase,digits,r,seed=None):
    print(json.dumps({'phase':phase,'digits':digits,'seed':seed,'seconds':r[0],'accuracy':r[1],'samples_per_sec':r[2],'train':r[3],'test':r[4],'cpu_seconds':r[5],
        'epochs':args.epochs,'threads':args.threads,'split':'platform' if args.split_index else 'reference','torch':torch.__version__}),flush=True)
a=split(0); report('pretrain','0-4',train(*a,model.parameters()))
for p in feat.parameters(): p.requires_grad=False
b=split(5); head=copy.deepcopy(cls.state_dict())
for seed in range(args.seeds):
    cls.load_state_dict(head); torch.manual_seed(seed); report('transfer','5-9',train(*b,cls.parameters()),seed)
