#!/usr/bin/env python3
"""Whether two loadgen binaries write the same reports, numbers aside: for a few seeded runs
(closed loop, open loop with Poisson arrivals, two client processes merged, UDP with
server work), the exit code, the
CSV header, every non-numeric CSV cell and the JSON's shape (keys, types, words) must
match. Run-specific values (ports, timestamps, versions, prose) are masked.

Usage: scripts/same_output.py BEFORE_BINARY AFTER_BINARY (exit 1 when they differ). Used
to show a restructuring changed no behaviour.
"""
import json, csv, re, subprocess, sys, os, tempfile
TMP = tempfile.mkdtemp(prefix='same-output-')


def run(binary, tag, extra):
    d=os.path.join(TMP, tag); os.makedirs(d, exist_ok=True)
    for f in ('r.csv','r.json'):
        try: os.remove(f'{d}/{f}')
        except FileNotFoundError: pass
    args=[binary]+extra+['--csv',f'{d}/r.csv','--json',f'{d}/r.json','--quiet']
    p=subprocess.run(args,capture_output=True,text=True)
    return p.returncode, p.stderr, list(csv.reader(open(f'{d}/r.csv'))), json.load(open(f'{d}/r.json'))
def shape(v, path=''):
    # numbers aside: the type of every leaf, and strings that are not run-specific
    if isinstance(v, dict): return {k: shape(x, path+'.'+k) for k,x in v.items()}
    if isinstance(v, list): return [shape(x, path) for x in v[:1]] + (['...'] if len(v)>1 else [])
    if isinstance(v, bool): return v
    if isinstance(v, (int, float)): return 'number'
    if v is None: return None
    if path.endswith('.addr'): return re.sub(r':\d+$', ':PORT', v)
    if any(k in path for k in ('timestamp','version','server_source','keep_up','warnings','stop_reason','note','verdict','summary','bottleneck','reason')): return 'text'
    return v
ok=True
for name, extra in [
    ('closed', ['--target','mio','--conns','20','-d','1s','--warmup','0.5s','--seed','7']),
    ('open', ['--target','threadpool','--conns','10','-d','1s','--warmup','0.5s','--rate','2000','--seed','7','--arrivals','poisson']),
    ('procs', ['--target','mio','--conns','20','--procs','2','-d','1s','--warmup','0.5s','--seed','7']),
    ('stages', ['--target','mio','--conns','10','--stages','1s@1k,1s:2k','--seed','7']),
    ('udp-work', ['--target','tokio','--transport','udp','--conns','5','-d','1s','--warmup','0.5s','--work','wait:100us','--seed','7']),
]:
    a=run(sys.argv[1], f'{name}-before', extra); b=run(sys.argv[2], f'{name}-after', extra)
    same_code = a[0]==b[0]
    same_header = a[2][0]==b[2][0]
    ja, jb = shape(a[3]), shape(b[3])
    same_json = ja==jb
    # CSV non-numeric cells
    def cells(rows):
        out=[]
        for h,v in zip(rows[0], rows[1]):
            try: float(v); out.append((h,'number'))
            except ValueError: out.append((h, re.sub(r':\d+$', ':PORT', v) if h == 'addr' else v if h not in ('timestamp','version') else 'text'))
        return out
    same_cells = cells(a[2])==cells(b[2])
    print(f"{name}: exit {a[0]} vs {b[0]}; CSV header same: {same_header} ({len(a[2][0])} columns); CSV cells same (numbers aside): {same_cells}; JSON same (numbers aside): {same_json}")
    if not same_json:
        def walk(x,y,p=''):
            if isinstance(x,dict) and isinstance(y,dict):
                for k in set(x)|set(y):
                    if k not in x or k not in y: print('  key only on one side:', p+'.'+k)
                    else: walk(x[k],y[k],p+'.'+k)
            elif x!=y: print('  differs:', p, repr(x)[:80], repr(y)[:80])
        walk(ja,jb)
    if not same_cells:
        for (h1,v1),(h2,v2) in zip(cells(a[2]),cells(b[2])):
            if (h1,v1)!=(h2,v2): print('  cell', h1, repr(v1), repr(v2))
    ok = ok and same_code and same_header and same_json and same_cells
print('same reports, numbers aside' if ok else 'DIFFERENT')
sys.exit(0 if ok else 1)
