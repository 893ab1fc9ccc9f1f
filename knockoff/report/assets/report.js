(function(){
'use strict';
var KO=window.KO, M=KO.meta, PAGE=M.page_size, DET=M.detail_size, VERDICTS=M.verdicts;
var ID=0,V=1,RISK=2,BRAND=3,SELLER=4,RATIO=5,CODES=6,TITLE=7,TEXT=8;
var rows=[]; for(var k=0;k<KO.parts.length;k++){rows=rows.concat(KO.parts[k]||[]);}
var $=function(id){return document.getElementById(id);};
var state={page:0}, shown=[], hay=null, decisions={}, storeOk=true;
var KEY='knockoff.decisions.'+M.scan;
try{decisions=JSON.parse(localStorage.getItem(KEY)||'{}')||{};}catch(e){storeOk=false;}

function el(tag,cls,text){var e=document.createElement(tag);if(cls){e.className=cls;}
  if(text!==undefined&&text!==null){e.textContent=String(text);}return e;}
function url(key,large){if(M.inline){return (KO.imgs[key]||[])[large?1:0]||'';}
  return M.thumbs+'/'+(large?'l':'s')+'/'+key.slice(0,2)+'/'+key+'.jpg';}
function pct(x){return Math.round(100*x)+' %';}

function haystack(){if(!hay){hay=new Array(rows.length);for(var i=0;i<rows.length;i++){var r=rows[i];
  hay[i]=(r[ID]+'\n'+r[TITLE]+'\n'+(r[SELLER]>=0?M.sellers[r[SELLER]]:'')+'\n'+r[TEXT]).toLowerCase();}}return hay;}

function readFilters(){return {q:$('q').value.trim().toLowerCase(),v:+$('f-verdict').value,b:+$('f-brand').value,
  c:+$('f-code').value,s:$('f-seller').value.trim(),d:$('f-decision').value,sort:$('sort').value};}

function passes(i,f,sellerId){var r=rows[i];
  if(f.v>=0&&r[V]!==f.v){return false;} if(f.b>=0&&r[BRAND]!==f.b){return false;}
  if(f.c>=0&&r[CODES].indexOf(f.c)<0){return false;} if(f.s&&r[SELLER]!==sellerId){return false;}
  if(f.d){var d=decisions[r[ID]];if(f.d==='none'?!!d:(!d||d[0]!==f.d)){return false;}}
  if(f.q&&haystack()[i].indexOf(f.q)<0){return false;} return true;}

function name(list,i){return i>=0?list[i].toLowerCase():'\uffff';}
var SORTS={review:null,
  risk:function(a,b){return rows[b][RISK]-rows[a][RISK]||a-b;},
  ratio:function(a,b){var x=rows[a][RATIO],y=rows[b][RATIO];if(x===null&&y===null){return a-b;}
    if(x===null){return 1;} if(y===null){return -1;} return x-y||a-b;},
  brand:function(a,b){var x=name(M.brands,rows[a][BRAND]),y=name(M.brands,rows[b][BRAND]);return x<y?-1:x>y?1:a-b;},
  seller:function(a,b){var x=name(M.sellers,rows[a][SELLER]),y=name(M.sellers,rows[b][SELLER]);return x<y?-1:x>y?1:a-b;}};

function apply(){var f=readFilters(), sellerId=f.s?M.sellers.indexOf(f.s):-1; shown=[];
  for(var i=0;i<rows.length;i++){if(passes(i,f,sellerId)){shown.push(i);}}
  if(SORTS[f.sort]){shown.sort(SORTS[f.sort]);} state.page=0; render();}

function detailOf(i){var c=Math.floor(i/DET), chunk=KO.details[c];
  if(chunk){return chunk[i-c*DET];}
  if(!KO.loading[c]&&!M.inline){KO.loading[c]=true;var s=document.createElement('script');
    s.src=M.data+'/d-'+('0000'+c).slice(-5)+'.js';document.body.appendChild(s);}
  return null;}

function textOf(d,p){var t=d.t||[]; for(var k=0;k<t.length;k++){if(t[k][0]===p){return t[k];}} return null;}
function overlay(w,h,cls){var svg=document.createElementNS('http://www.w3.org/2000/svg','svg');
  svg.setAttribute('viewBox','0 0 '+w+' '+h); svg.setAttribute('preserveAspectRatio','none');
  if(cls){svg.setAttribute('class',cls);} return svg;}
function polygon(points,cls,label){var ns='http://www.w3.org/2000/svg', poly=document.createElementNS(ns,'polygon');
  poly.setAttribute('points',points); if(cls){poly.setAttribute('class',cls);}
  if(label){var t=document.createElementNS(ns,'title'); t.textContent=label; poly.appendChild(t);} return poly;}
function textBoxes(f,text){var svg=overlay(text[1],text[2],'text-boxes'), hits={};
  text[4].forEach(function(k){hits[k]=true;});
  text[3].forEach(function(b,k){var pts=[]; for(var j=0;j<8;j+=2){pts.push(b[j]+','+b[j+1]);}
    svg.appendChild(polygon(pts.join(' '),hits[k]?'tb hit':'tb',b[8]));}); f.appendChild(svg);}
function frame(photo,size,box,large,text){var f=el('span','frame'), w=photo[1]||size, h=photo[2]||size,
  s=Math.min(size/w,size/h,large?2:4); var img=el('img','thumb'+(large?' large':''));
  img.width=Math.max(1,Math.round(w*s)); img.height=Math.max(1,Math.round(h*s)); img.alt=photo[3]||'photo';
  img.loading=large?'eager':'lazy'; img.src=url(photo[0],large); f.appendChild(img);
  if(box){var svg=overlay(box.fr[0],box.fr[1],null);
    svg.appendChild(polygon(box.box.map(function(p){return p[0]+','+p[1];}).join(' '),null,null)); f.appendChild(svg);}
  if(text){textBoxes(f,text);} return f;}

function figure(photo,size,caption,box,onClick){var fig=el('figure');
  if(photo[0]){var f=frame(photo,size,box,false); if(onClick){f.addEventListener('click',onClick);} fig.appendChild(f);}
  else{fig.appendChild(el('span','nophoto',photo[4]||'no photo'));}
  fig.appendChild(el('figcaption',null,caption)); return fig;}

function textOnly(m){return m.tier==='text'&&!m.ref[0];}  // only the photo's text names the brand: no official photo
var NO_REF=[null,0,0,'','no official photo: only the text read in the listing photo names the brand'];
function boxOf(d,p){var m=d.m; return (m&&m.ver&&m.ver.box&&p===d.mi)?m.ver:null;}

function photosCell(td,i,d){var pair=el('div','pair'), p=d.p[d.mi]||[null,0,0,'','no photo'];
  var main=figure(p,M.small,'listing: '+(p[3]||''),boxOf(d,d.mi),function(){openViewer(i,d.mi);});
  pair.appendChild(main);
  if(d.m&&textOnly(d.m)){pair.appendChild(figure(NO_REF,M.small,'official: none',null,null));}
  else if(d.m){pair.appendChild(figure(d.m.ref,M.small,refCaption(d.m)+': '+(d.m.ref[3]||''),null,function(){openViewer(i,d.mi);}));}
  td.appendChild(pair);
  if(d.p.length>1){var more=el('div','more'); d.p.forEach(function(q,j){if(j===d.mi){return;}
    if(q[0]){var f=frame(q,48,null,false); f.title=q[3]; f.addEventListener('click',function(){openViewer(i,j);});
      more.appendChild(f);} else{more.appendChild(el('span','missing',q[3]+': '+q[4]));}});
    td.appendChild(el('div','muted',d.p.length+' photos')); td.appendChild(more);}}

// a match that names the brand only shows the official photo its package matched best, which may be another product's
function brandOnly(m){return !!m.tier&&!m.pid;}
function refCaption(m){return brandOnly(m)?'nearest official photo of '+m.b+' (product not named: it may show another one)':'official';}
function productText(m){return m.pn||m.pid||'which product: not named';}
function verText(ver,tier){if(!ver){return '';}
  if(!ver.ok&&tier==='same-package'){return (ver.inl!==null&&ver.inl!==undefined?ver.inl+' keypoints match the package; ':'')
    +'a new photo of it, not a copy of the official photo ('+(ver.fail||'not verified')+')';}
  if(!ver.ok){return 'geometric check failed: '+(ver.fail||'not verified');}
  var t=[]; if(ver.inl!==null&&ver.inl!==undefined){t.push(ver.inl+' matched keypoints');}
  if(ver.cov!==null&&ver.cov!==undefined){t.push('shows '+pct(ver.cov)+' of the official photo');}
  if(ver.pix!==null&&ver.pix!==undefined){t.push(pct(ver.pix)+' of it agrees pixel for pixel');} return t.join('; ');}

function matchBlock(m){var b=el('div');
  var head=el('div'); head.appendChild(el('b',null,m.b)); head.appendChild(document.createTextNode(' · '+productText(m)));
  b.appendChild(head); b.appendChild(el('div','code',m.pid));
  b.appendChild(el('div',null,m.tier==='text'?'named by the text in its photo':'global similarity '+m.sim));
  if(m.tier!=='text'){b.appendChild(el('div',null,m.tier||'below match threshold'));}
  var v=verText(m.ver,m.tier); if(v){b.appendChild(el('div','muted',v));} return b;}

function matchCell(td,d,verdict){if(d.m){td.appendChild(matchBlock(d.m));return;}
  td.appendChild(el('div','nomatch',verdict==='error'?'not checked':'no match'));
  if(d.n){var det=el('details','nearest'); det.appendChild(el('summary',null,'nearest reference (not a match)'));
    det.appendChild(figure(d.n.ref,96,d.n.ref[3],null,null)); det.appendChild(matchBlock(d.n)); td.appendChild(det);}}

function aboutCell(td,r,d){var t=el('div','title'); if(r[TITLE]){t.textContent=r[TITLE];}
  else{t.appendChild(el('span','muted','no title'));} td.appendChild(t); td.appendChild(el('div','id',r[ID]));
  if(r[TEXT]){td.appendChild(el('div','muted','text in photo: '+r[TEXT]));}
  var said={}; d.s.forEach(function(s){said[s[0]+'\n'+s[2]]=true;});
  var ul=el('ul','reasons');
  if(d.m&&brandOnly(d.m)){ul.appendChild(el('li','brandonly','the brand only: '+d.m.b+', not which of its products (a person must tell; see the signals below)'));}
  d.r.forEach(function(x){if(said[x[0]+'\n'+x[1]]){return;} var li=el('li'); if(x[0]){li.appendChild(el('span','code',x[0]+' '));}
    li.appendChild(document.createTextNode(x[1])); ul.appendChild(li);});
  if(d.e&&!d.r.length){ul.appendChild(el('li',null,d.e));}
  if(d.k&&d.k.length&&r[V]!==VERDICTS.indexOf('error')){ul.appendChild(el('li','missing',d.k.length+' photo(s) could not be read'));}
  td.appendChild(ul); if(!d.s.length){return;}
  var sl=el('ul','signals'); d.s.forEach(function(s){var li=el('li','signal'); li.setAttribute('data-code',s[0]);
    li.setAttribute('data-state',s[1]); li.appendChild(el('span','state '+s[1],s[1])); li.appendChild(el('span','code',s[0]+' '));
    li.appendChild(document.createTextNode(s[2])); sl.appendChild(li);}); td.appendChild(sl);}

function priceCell(td,r,d){var pr=d.pr; td.appendChild(pr[0]?el('div',null,pr[0]):el('div','muted','no price'));
  if(pr[1]){td.appendChild(el('div','muted','reference '+pr[1]+(r[RATIO]!==null?' ('+Math.round(100*r[RATIO])+'%)':'')));}
  if(pr[2]){td.appendChild(el('div','pricenote',pr[2]));}}

function decisionCell(td,id){var box=el('div','decisions'), cur=decisions[id];
  [['counterfeit','counterfeit'],['not_counterfeit','not counterfeit'],['unsure','unsure']].forEach(function(o){
    var b=el('button',cur&&cur[0]===o[0]?'on':'',o[1]); b.type='button'; b.setAttribute('data-d',o[0]);
    b.addEventListener('click',function(){mark(id,o[0],null); render();}); box.appendChild(b);});
  var note=el('input','note'); note.placeholder='note'; note.value=cur?cur[1]:'';
  note.addEventListener('change',function(){mark(id,null,note.value);}); box.appendChild(note); td.appendChild(box);}

function mark(id,decision,note){var cur=decisions[id]||['',''];
  if(decision!==null){cur[0]=decision;} if(note!==null){cur[1]=note;} if(!cur[0]){cur[0]='unsure';}
  decisions[id]=[cur[0],cur[1],new Date().toISOString()]; save();}
function save(){try{localStorage.setItem(KEY,JSON.stringify(decisions));}catch(e){storeOk=false;} counts();}
function counts(){var n=Object.keys(decisions).length;
  $('decided').textContent=n+' decided'+(storeOk?'':' (this browser does not keep them: export before closing)');}

function rowEl(i){var r=rows[i], verdict=VERDICTS[r[V]]||'unknown', tr=el('tr','row '+verdict), d=detailOf(i);
  tr.setAttribute('data-listing',r[ID]); tr.setAttribute('data-verdict',verdict); tr.setAttribute('data-risk',r[RISK]);
  var td=el('td'); td.appendChild(el('span','badge '+verdict,verdict.replace('_',' ')));
  td.appendChild(el('div','risk',r[RISK].toFixed(2))); var bar=el('div','bar'), fill=el('i');
  fill.style.width=Math.round(100*Math.max(0,Math.min(1,r[RISK])))+'%'; bar.appendChild(fill); td.appendChild(bar);
  tr.appendChild(td); var cells=['photos','match','about','price','seller','decide'].map(function(c){
    var x=el('td',c); tr.appendChild(x); return x;});
  var seller=r[SELLER]>=0?M.sellers[r[SELLER]]:''; if(seller){var b=el('button','link seller-link',seller);
    b.addEventListener('click',function(){$('f-seller').value=seller;apply();}); cells[4].appendChild(b);}
  else{cells[4].appendChild(el('span','muted','unknown'));}
  decisionCell(cells[5],r[ID]);
  if(!d){cells[0].appendChild(el('span','muted loading','loading…')); var t=el('div','title',r[TITLE]);
    cells[2].appendChild(t); cells[2].appendChild(el('div','id',r[ID])); return tr;}
  photosCell(cells[0],i,d); matchCell(cells[1],d,verdict); aboutCell(cells[2],r,d); priceCell(cells[3],r,d); return tr;}

function render(){var body=$('rows'), pages=Math.max(1,Math.ceil(shown.length/PAGE));
  state.page=Math.max(0,Math.min(state.page,pages-1)); var start=state.page*PAGE, frag=document.createDocumentFragment();
  shown.slice(start,start+PAGE).forEach(function(i){frag.appendChild(rowEl(i));});
  body.textContent=''; body.appendChild(frag);
  $('shown').textContent=shown.length+' of '+rows.length+' listings shown';
  $('page').textContent='page '+(state.page+1)+' of '+pages; $('prev').disabled=state.page===0;
  $('next').disabled=state.page>=pages-1; counts();}

KO.onDetail=function(c){var start=state.page*PAGE; if(shown.slice(start,start+PAGE).some(function(i){
  return Math.floor(i/DET)===c;})){render();} if(KO.viewing!==undefined){viewerRefresh();}};

function openViewer(i,p){KO.viewing=[i,p]; viewerRefresh(); $('viewer').hidden=false;}
function viewerRefresh(){if(!KO.viewing){return;} var i=KO.viewing[0], p=KO.viewing[1], d=detailOf(i), r=rows[i];
  var sides=$('viewer-sides'); sides.textContent=''; $('viewer-title').textContent=r[TITLE]||r[ID]; if(!d){return;}
  var photo=d.p[p], text=textOf(d,p), said=text?text[3].map(function(b){return b[8];}).join(' · '):'';
  sides.appendChild(bigFigure(photo,'listing photo: '+photo[3]+(said?' · text read: '+said:''),boxOf(d,p),text));
  if(d.m&&textOnly(d.m)){sides.appendChild(bigFigure(NO_REF,'official photo: none; '+d.m.b+' is named by the text read in the listing photo',null));}
  else if(d.m){sides.appendChild(bigFigure(d.m.ref,(brandOnly(d.m)?refCaption(d.m):'official photo')+': '+d.m.ref[3]+' · '
    +productText(d.m)+' · '+verText(d.m.ver,d.m.tier),null));}
  else{sides.appendChild(el('div','nomatch','no match'));}}
function bigFigure(photo,caption,box,text){var fig=el('figure','big');
  fig.appendChild(photo[0]?frame(photo,M.large,box,true,text):el('span','nophoto',photo[4]));
  fig.appendChild(el('figcaption',null,caption)); return fig;}
function closeViewer(){KO.viewing=undefined; $('viewer').hidden=true;}

function csvCell(x){x=String(x===undefined||x===null?'':x); if(/^[=+\-@\t\r]/.test(x)){x="'"+x;}
  return /[",\n\r]/.test(x)?'"'+x.replace(/"/g,'""')+'"':x;}
function exportCsv(){var lines=['listing_id,decision,note,when'];
  rows.forEach(function(r){var d=decisions[r[ID]]; if(d){lines.push([r[ID],d[0],d[1],d[2]].map(csvCell).join(','));}});
  var blob=new Blob([lines.join('\r\n')+'\r\n'],{type:'text/csv'}), a=document.createElement('a');
  a.href=URL.createObjectURL(blob); a.download='decisions.csv'; document.body.appendChild(a); a.click();
  setTimeout(function(){URL.revokeObjectURL(a.href); a.remove();},1000);}

var timer=null;
$('q').addEventListener('input',function(){clearTimeout(timer); timer=setTimeout(apply,150);});
$('q').addEventListener('change',function(){clearTimeout(timer); apply();});
['sort','f-verdict','f-brand','f-code','f-decision'].forEach(function(id){$(id).addEventListener('change',apply);});
$('f-seller').addEventListener('change',apply);
$('f-seller').addEventListener('focus',function(){var dl=$('sellers-list'); if(dl.childElementCount){return;}
  M.sellers.slice(0,5000).forEach(function(s){var o=document.createElement('option'); o.value=s; dl.appendChild(o);});});
$('prev').addEventListener('click',function(){state.page--;render();});
$('next').addEventListener('click',function(){state.page++;render();});
$('export').addEventListener('click',exportCsv);
$('viewer-close').addEventListener('click',closeViewer);
$('viewer').addEventListener('click',function(e){if(e.target===$('viewer')){closeViewer();}});
document.addEventListener('keydown',function(e){if(e.key==='Escape'){closeViewer();}});
Array.prototype.forEach.call(document.querySelectorAll('button.seller-filter'),function(b){
  b.addEventListener('click',function(){$('f-seller').value=b.getAttribute('data-seller'); apply();});});
apply(); window.KO_READY=true; KO.readyMs=performance.now();
})();
