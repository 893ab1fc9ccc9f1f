window.KO={meta:null,parts:[],details:{},imgs:{},loading:{},
  setMeta:function(m){this.meta=m;},
  index:function(k,rows){this.parts[k]=rows;},
  detail:function(k,rows){this.details[k]=rows;delete this.loading[k];if(this.onDetail){this.onDetail(k);}},
  images:function(map){for(var k in map){this.imgs[k]=map[k];}}};
