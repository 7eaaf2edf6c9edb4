// The live dashboard: one page, no external assets, polling /api/v1/*.
#pragma once

#include <string_view>

namespace hashgate {

inline constexpr std::string_view kDashboardHtml = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hashgate</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#111418;color:#dde3ea}
header{padding:12px 20px;background:#1b2027;display:flex;gap:24px;align-items:baseline}
h1{font-size:18px;margin:0}h2{font-size:15px;margin:18px 20px 6px}
.stat b{font-size:18px;color:#fff}
table{border-collapse:collapse;margin:0 20px;width:calc(100% - 40px)}
th,td{padding:4px 8px;text-align:left;border-bottom:1px solid #2a313a}
th{color:#8b97a5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.state{padding:1px 8px;border-radius:9px;font-size:12px}
.flag{background:#8a5a12;margin-right:4px}.ok{background:#1e6b3a}
.active{background:#1e6b3a}.standby{background:#2c4f7c}.down{background:#8a2a2a}.disabled{background:#555}
tr.trouble td{color:#ffb4a8}
canvas{margin:0 20px;background:#161a20;border:1px solid #2a313a}
#err{color:#ff8a80;margin:0 20px}
</style></head><body>
<header><h1>hashgate</h1>
<span class="stat">hashrate <b id="hashrate">-</b></span>
<span class="stat">miners <b id="connections">-</b></span>
<span class="stat">workers <b id="workers-total">-</b></span>
<span class="stat">ready <b id="ready">-</b></span>
<span class="stat">expected <b id="earnings">-</b></span>
<span class="stat" id="version"></span></header>
<p id="err"></p>
<h2>Pools</h2>
<table id="pools"><thead><tr><th>pool</th><th>state</th><th>breaker</th><th>priority</th><th>weight</th>
<th>sessions</th><th>accepted</th><th>rejected</th><th>hashrate</th><th>per day</th><th>height</th><th>tip lag</th><th>integrity</th>
</tr></thead><tbody></tbody></table>
<h2>Hashrate</h2>
<canvas id="chart" width="900" height="180"></canvas>
<div id="ledger"></div><script src="/dashboard/ledger.js" defer></script>
<h2>Miners, most trouble first</h2>
<table id="workers"><thead><tr><th>worker</th><th>firmware</th><th>sessions</th><th>hashrate</th><th>accepted</th><th>rejected</th>
<th>reject ratio</th><th>last share</th><th>per day</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const units=["H/s","kH/s","MH/s","GH/s","TH/s","PH/s","EH/s"];
function rate(h){let i=0;while(h>=1000&&i<units.length-1){h/=1000;i++}return h.toFixed(2)+" "+units[i]}
function td(text,cls){const e=document.createElement("td");e.textContent=text;if(cls)e.className=cls;return e}
// Expected earnings a day (economics): coins, and money when a price is known.
function earn(e,basis,cur){if(!e)return "-";const c=e["coins_per_day_"+basis],m=e["money_per_day_"+basis];
  return c.toPrecision(4)+" coins"+(m===null||m===undefined?"":" · "+m.toFixed(2)+" "+cur)}
function age(s){if(s<0)return "never";if(s<60)return s.toFixed(0)+" s ago";return (s/60).toFixed(1)+" min ago"}
function drawChart(points){
  const c=document.getElementById("chart"),g=c.getContext("2d");g.clearRect(0,0,c.width,c.height);
  if(points.length<2)return;
  const t0=points[0][0],t1=points[points.length-1][0],max=Math.max(...points.map(p=>p[1]))||1;
  g.strokeStyle="#4fc3f7";g.lineWidth=2;g.beginPath();
  points.forEach((p,i)=>{const x=10+(c.width-20)*(p[0]-t0)/Math.max(1,t1-t0),y=c.height-10-(c.height-20)*p[1]/max;
    i?g.lineTo(x,y):g.moveTo(x,y)});g.stroke();
  g.fillStyle="#8b97a5";g.fillText(rate(max),12,14);
}
async function refresh(){
  try{
    const [st,pl,wk]=await Promise.all(["status","pools","workers?limit=200"].map(
      p=>fetch("/api/v1/"+p,{cache:"no-store"}).then(r=>r.json())));
    document.getElementById("hashrate").textContent=rate(st.hashrate);
    document.getElementById("connections").textContent=st.connections;
    document.getElementById("workers-total").textContent=wk.total;
    document.getElementById("ready").textContent=st.ready?"yes":"no ("+st.not_ready_reason+")";
    const ec=st.economics,cur=ec?ec.currency:"";
    document.getElementById("earnings").textContent=ec?earn(ec.farm,"credited",cur)+" a day":"- (no economics section)";
    document.body.dataset.farmCoins=ec?ec.farm.coins_per_day_credited:"";
    document.getElementById("version").textContent="v"+st.version+" · "+st.algorithm+" · "+st.hashing_path;
    const pb=document.querySelector("#pools tbody");pb.replaceChildren();
    for(const p of pl.pools){const tr=document.createElement("tr");tr.dataset.pool=p.name;tr.dataset.state=p.state;
      const s=td("");const b=document.createElement("span");b.className="state "+p.state;b.textContent=p.state;s.appendChild(b);
      tr.append(td(p.name),s,td(p.breaker),td(p.priority,"n"),td(p.weight,"n"),td(p.sessions,"n"),
        td(p.accepted,"n"),td(p.rejected,"n"),td(rate(p.hashrate),"n"),td(earn(p.economics,"credited",cur),"n"),td(p.height===null?"-":p.height,"n"),
        td(p.tip_lag_seconds>0?p.tip_lag_seconds.toFixed(0)+" s"+(p.tip_lag_blocks?" / "+p.tip_lag_blocks+" blk":""):"-","n"));
      // Integrity badges: one per flag raised on the pool's jobs (stale_tip, ahead, nbits, ...).
      const ib=td("");tr.dataset.flags=(p.integrity_flags||[]).join(",");
      for(const f of p.integrity_flags||[]){const e=document.createElement("span");e.className="state flag";e.textContent=f;ib.appendChild(e)}
      if(p.tip&&!(p.integrity_flags||[]).length){const e=document.createElement("span");e.className="state ok";e.textContent="ok";ib.appendChild(e)}
      tr.dataset.coins=p.economics?p.economics.coins_per_day_credited:"";tr.append(ib);pb.appendChild(tr)}
    const wb=document.querySelector("#workers tbody");wb.replaceChildren();
    for(const w of wk.workers){const tr=document.createElement("tr");tr.dataset.worker=w.name;
      tr.dataset.accepted=w.accepted;tr.dataset.rejected=w.rejected;tr.dataset.profile=w.profile||"";
      tr.dataset.coins=w.economics?w.economics.coins_per_day_accepted:"";
      const fw=td(w.profile||"-");fw.title=w.agent||"";
      if(w.reject_ratio>0.05||w.last_share_age_seconds<0||w.last_share_age_seconds>300)tr.className="trouble";
      tr.append(td(w.name),fw,td(w.sessions,"n"),td(rate(w.hashrate),"n"),td(w.accepted,"n"),td(w.rejected,"n"),
        td((100*w.reject_ratio).toFixed(1)+" %","n"),td(age(w.last_share_age_seconds)),td(earn(w.economics,"accepted",cur),"n"));
      wb.appendChild(tr)}
    drawChart(st.hashrate_history.concat([[st.published_unix,st.hashrate]]));
    document.getElementById("err").textContent="";
    document.body.dataset.loaded="1";
  }catch(e){document.getElementById("err").textContent="cannot reach hashgate: "+e}
}
refresh();setInterval(refresh,2000);
</script></body></html>
)HTML";

}  // namespace hashgate
