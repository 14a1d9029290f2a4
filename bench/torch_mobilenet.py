# torchvision's mobilenet_v2 at a width and input size: forward (eval, no grad) and training-step
# (train mode: batch-norm on batch statistics, cross-entropy, backward, Adam) samples/s, for
# bench/mobilenet.ts, which runs it in the same run as the platform's model. One JSON line.
#   python3 torch_mobilenet.py ALPHA SIZE [--batch 16] [--steps 5] [--threads 1] [--classes 10]
# Each measurement runs one untimed warm-up call first, as the tfjs side does.
import argparse, json, time, torch, torchvision
ap=argparse.ArgumentParser(); ap.add_argument('alpha',type=float); ap.add_argument('size',type=int)
ap.add_argument('--batch',type=int,default=16); ap.add_argument('--steps',type=int,default=5)
ap.add_argument('--threads',type=int,default=1); ap.add_argument('--classes',type=int,default=10); a=ap.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
model=torchvision.models.mobilenet_v2(width_mult=a.alpha,num_classes=a.classes)
x=torch.rand(a.batch,3,a.size,a.size); y=torch.randint(0,a.classes,(a.batch,))
opt=torch.optim.Adam(model.parameters(),lr=1e-3)
def per_call(fn):
    fn(); t=time.perf_counter()
    for _ in range(a.steps): fn()
    return (time.perf_counter()-t)/a.steps
def forward():
    model.eval()
    with torch.no_grad(): model(x)
def train():
    model.train(); opt.zero_grad(); torch.nn.functional.cross_entropy(model(x),y).backward(); opt.step()
f=per_call(forward); s=per_call(train)
print(json.dumps({'alpha':a.alpha,'size':a.size,'batch':a.batch,'threads':a.threads,'forward':a.batch/f,'train':a.batch/s,
  'params':sum(p.numel() for p in model.parameters()),'torch':torch.__version__,'torchvision':torchvision.__version__}),flush=True)
