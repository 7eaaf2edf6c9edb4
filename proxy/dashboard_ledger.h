// The dashboard's history part, served as /dashboard/ledger.js and loaded by
// the page (proxy/dashboard.h): farm hashrate per pool and the reject ratio
// over the last hour, 24 h or 7 d, a worker's own history when its row is
// clicked, and the reconciliation table. Everything comes from the ledger
// (GET /api/v1/history, /api/v1/reconciliation), so the charts are whole
// after a page reload or a restart; the range and the chosen worker live in
// the page's #fragment. Charts are SVG, so their axes are in the DOM.
#pragma once

#include <string_view>

namespace hashgate {

inline constexpr std::string_view kDashboardLedgerJs = R"JS("use strict";
(function(){
const RANGES={"1h":{span:3600,step:60,label:"last hour"},"24h":{span:86400,step:600,label:"24 h"},
  "7d":{span:604800,step:3600,label:"7 d"}};
const COLORS=["#4fc3f7","#ffb74d","#81c784","#e57373","#ba68c8","#fff176"];
const SVG="http://www.w3.org/2000/svg";
const state={range:"1h",worker:null};
const root=document.getElementById("ledger");
if(!root)return;
function readFragment(){const h=new URLSearchParams(location.hash.slice(1));
  if(RANGES[h.get("range")])state.range=h.get("range");state.worker=h.get("worker")||null}
function writeFragment(){const h=new URLSearchParams();h.set("range",state.range);
  if(state.worker)h.set("worker",state.worker);window.history.replaceState(null,"","#"+h.toString())}
function fmtRate(h){const u=["H/s","kH/s","MH/s","GH/s","TH/s","PH/s","EH/s"];let i=0;
  while(h>=1000&&i<u.length-1){h/=1000;i++}return h.toFixed(2)+" "+u[i]}
function two(n){return String(n).padStart(2,"0")}
function timeLabel(t,range){const d=new Date(t*1000);const hm=two(d.getHours())+":"+two(d.getMinutes());
  return range==="7d"?(d.getMonth()+1)+"/"+d.getDate()+" "+hm:hm}
function el(name,attrs,text){const e=document.createElementNS(SVG,name);
  for(const k in attrs)e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e}
root.innerHTML='<h2>History <span id="ledger-ranges"></span></h2>'+
  '<p id="ledger-err"></p>'+
  '<h3>Farm hashrate per pool</h3><svg id="hist-rate" width="900" height="200"></svg>'+
  '<h3>Reject ratio</h3><svg id="hist-reject" width="900" height="140"></svg>'+
  '<h3 id="worker-title">A worker\'s history: click its row below</h3>'+
  '<svg id="hist-worker" width="900" height="160"></svg>'+
  '<h3>Reconciliation, per pool and hour (last 24 h)</h3>'+
  '<table id="reconciliation"><thead><tr><th>hour</th><th>pool</th><th>accepted diff</th><th>forwarded diff</th>'+
  '<th>pool credited diff</th><th>pool rejected diff</th><th>credited / accepted</th>'+
  '<th>credited / forwarded</th></tr></thead><tbody></tbody></table>';
const style=document.createElement("style");
style.textContent="#ledger svg{margin:0 20px;background:#161a20;border:1px solid #2a313a;display:block}"+
  "#ledger h3{font-size:13px;margin:12px 20px 4px;color:#8b97a5}#ledger-ranges button{margin-left:6px;"+
  "background:#2a313a;color:#dde3ea;border:0;padding:2px 10px;border-radius:9px;cursor:pointer}"+
  "#ledger-ranges button.on{background:#2c4f7c}#ledger-err{color:#ff8a80;margin:0 20px}"+
  "#workers tbody tr{cursor:pointer}";
document.head.appendChild(style);
const pick=document.createElement("style");document.head.appendChild(pick);
const ranges=document.getElementById("ledger-ranges");
for(const r in RANGES){const b=document.createElement("button");b.dataset.range=r;b.textContent=RANGES[r].label;
  b.onclick=()=>{state.range=r;writeFragment();draw()};ranges.appendChild(b)}
async function get(path){const r=await fetch(path,{cache:"no-store"});const body=await r.json();
  if(!r.ok){const e=new Error(body.error||("HTTP "+r.status));e.status=r.status;throw e}return body}
// One chart: series of [t, value] over [from, to), a time axis with labels
// at whole steps, and the largest value on the y axis.
function chart(svg,series,from,to,range,fmt){
  svg.replaceChildren();const W=+svg.getAttribute("width"),H=+svg.getAttribute("height");
  const L=70,R=10,T=10,B=24;const x=t=>L+(W-L-R)*(t-from)/Math.max(1,to-from);
  let max=0;for(const s of series)for(const p of s.points)max=Math.max(max,p[1]);if(!(max>0))max=1;
  const y=v=>H-B-(H-T-B)*v/max;
  svg.appendChild(el("line",{x1:L,y1:H-B,x2:W-R,y2:H-B,stroke:"#55606c",class:"xaxis"}));
  svg.appendChild(el("line",{x1:L,y1:T,x2:L,y2:H-B,stroke:"#55606c",class:"yaxis"}));
  const tickEvery=RANGES[range].span/6;
  for(let t=Math.ceil(from/tickEvery)*tickEvery;t<=to;t+=tickEvery){
    svg.appendChild(el("line",{x1:x(t),y1:H-B,x2:x(t),y2:H-B+4,stroke:"#55606c"}));
    svg.appendChild(el("text",{x:x(t),y:H-6,fill:"#8b97a5","font-size":11,"text-anchor":"middle",class:"xtick",
      "data-t":t},timeLabel(t,range)))}
  svg.appendChild(el("text",{x:L-6,y:T+10,fill:"#8b97a5","font-size":11,"text-anchor":"end",class:"ytick"},fmt(max)));
  svg.appendChild(el("text",{x:L-6,y:H-B,fill:"#8b97a5","font-size":11,"text-anchor":"end",class:"ytick"},fmt(0)));
  series.forEach((s,i)=>{const c=COLORS[i%COLORS.length];
    const line=el("polyline",{fill:"none",stroke:c,"stroke-width":2,points:s.points.map(p=>x(p[0]).toFixed(1)+","+
      y(p[1]).toFixed(1)).join(" "),"data-series":s.name,"data-points":s.points.length});
    svg.appendChild(line);
    svg.appendChild(el("text",{x:L+8+i*140,y:T+12,fill:c,"font-size":12,class:"legend"},s.name))});
  svg.dataset.from=from;svg.dataset.to=to;svg.dataset.range=range;
}
function window_(){const r=RANGES[state.range],to=Math.floor(Date.now()/1000);
  return {from:to-r.span,to:to,step:r.step,q:"from="+(to-r.span)+"&to="+to+"&step="+r.step}}
async function drawFarm(w,pools){
  const per=await Promise.all(pools.map(p=>get("/api/v1/history?pool="+encodeURIComponent(p)+"&"+w.q)));
  const fleet=await get("/api/v1/history?"+w.q);
  const svg=document.getElementById("hist-rate");
  chart(svg,pools.map((p,i)=>({name:p,points:per[i].points.map(x=>[x.ts,x.hashrate])})),fleet.from,fleet.to,
    state.range,fmtRate);
  svg.dataset.accepted=per.reduce((a,h)=>a+h.points.reduce((b,x)=>b+x.accepted,0),0);
  const rj=document.getElementById("hist-reject");
  chart(rj,[{name:"reject ratio",points:fleet.points.map(x=>[x.ts,x.reject_ratio])}],fleet.from,fleet.to,
    state.range,v=>(100*v).toFixed(1)+" %");
  rj.dataset.rejected=fleet.points.reduce((a,x)=>a+x.rejected,0);
}
async function drawWorker(w){
  const svg=document.getElementById("hist-worker"),title=document.getElementById("worker-title");
  pick.textContent=state.worker?'#workers tr[data-worker="'+CSS.escape(state.worker)+'"] td{background:#24303d}':"";
  if(!state.worker){svg.replaceChildren();delete svg.dataset.worker;return}
  const h=await get("/api/v1/history?worker="+encodeURIComponent(state.worker)+"&"+w.q);
  chart(svg,[{name:state.worker+" hashrate",points:h.points.map(x=>[x.ts,x.hashrate])}],h.from,h.to,state.range,fmtRate);
  svg.dataset.worker=state.worker;
  svg.dataset.accepted=h.points.reduce((a,x)=>a+x.accepted,0);
  svg.dataset.rejected=h.points.reduce((a,x)=>a+x.rejected,0);
  title.textContent="History of "+state.worker+" ("+RANGES[state.range].label+"): "+svg.dataset.accepted+
    " accepted, "+svg.dataset.rejected+" rejected";
}
async function drawReconciliation(){
  const rec=await get("/api/v1/reconciliation");const tb=document.querySelector("#reconciliation tbody");
  tb.replaceChildren();const f=v=>v===null?"-":(+v).toPrecision(6);
  for(const r of rec.rows.slice().reverse()){const tr=document.createElement("tr");tr.dataset.pool=r.pool;
    tr.dataset.hour=r.hour;tr.dataset.credited=r.pool_accepted_difficulty;tr.dataset.accepted=r.accepted_difficulty;
    const d=new Date(r.hour*1000);
    for(const v of [(d.getMonth()+1)+"/"+d.getDate()+" "+two(d.getHours())+":00",r.pool,f(r.accepted_difficulty),
      f(r.forwarded_difficulty),f(r.pool_accepted_difficulty),f(r.pool_rejected_difficulty),
      r.ratio===null?"-":(100*r.ratio).toFixed(1)+" %",
      r.credited_of_forwarded===null?"-":(100*r.credited_of_forwarded).toFixed(1)+" %"]){
      const td=document.createElement("td");td.textContent=v;tr.appendChild(td)}
    tb.appendChild(tr)}
}
let drawing=false;
async function draw(){
  if(drawing)return;drawing=true;
  for(const b of ranges.children)b.className=b.dataset.range===state.range?"on":"";
  try{const w=window_();
    const pools=(await get("/api/v1/pools")).pools.map(p=>p.name);
    await Promise.all([drawFarm(w,pools),drawWorker(w),drawReconciliation()]);
    document.getElementById("ledger-err").textContent="";root.dataset.loaded="1";
  }catch(e){
    // No ledger configured: say so once, in place of the charts, and stop asking.
    if(e.status===404){clearInterval(timer);root.innerHTML='<h2>History</h2><p id="ledger-off" style="margin:0 20px">'+
      'History and reconciliation need the share ledger (<code>ledger.backend</code>: sqlite or postgres).</p>';
      root.dataset.loaded="off";return}
    document.getElementById("ledger-err").textContent="history: "+e.message}
  finally{drawing=false}
}
document.querySelector("#workers tbody").addEventListener("click",e=>{
  const tr=e.target.closest("tr[data-worker]");if(!tr||root.dataset.loaded==="off")return;
  state.worker=tr.dataset.worker;writeFragment();root.dataset.loaded="";drawWorker(window_()).then(
    ()=>{root.dataset.loaded="1"},err=>{document.getElementById("ledger-err").textContent="history: "+err.message})});
window.addEventListener("hashchange",()=>{readFragment();draw()});
const timer=setInterval(draw,30000);readFragment();draw();
})();
)JS";

}  // namespace hashgate
