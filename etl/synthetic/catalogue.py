"""Literal tables behind the synthetic universe: named instruments and name fragments.

Real codes and names make demos and emulator answers look familiar; every number attached to
them (listing dates are approximate, price levels are rough orders of magnitude) is only
there to make the synthetic data plausible, not to be true.
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = [
    "BOARDS",
    "CN_NAMED_STOCKS",
    "CN_NAME_HEADS",
    "CN_NAME_TAILS",
    "CRYPTO",
    "ETFS",
    "FOREX",
    "INDICES",
    "OVERSEAS",
]


class Named(NamedTuple):
    """One literal instrument: code, name, listing date (ISO), typical price level."""

    code: str
    name: str
    list_date: str | None
    level: float | None = None


class Board(NamedTuple):
    """A share-code block of an A-share board: how many codes to draw and when they list."""

    market: str
    prefix: str  # the first three digits
    size: int  # codes in the universe, named stocks of the block included
    first_listing: str  # ISO: the board's first listing day
    last_listing: str  # ISO: latest regular listing (recent IPOs are added on top)


# A-share boards (2024 layout). 600/601/603 and 688 (STAR, since 2019-07-22) trade on SSE;
# 000 (main), 002 (former SME board, since 2004-06-25) and 300 (ChiNext, since 2009-10-30)
# on SZSE.
BOARDS: Final = (
    Board("SH", "600", 95, "1991-01-01", "2012-12-31"),
    Board("SH", "601", 50, "2006-01-01", "2021-12-31"),
    Board("SH", "603", 60, "2011-01-01", "2023-12-31"),
    Board("SH", "688", 50, "2019-07-22", "2024-06-30"),
    Board("SZ", "000", 80, "1991-04-03", "2001-12-31"),
    Board("SZ", "002", 80, "2004-06-25", "2021-12-31"),
    Board("SZ", "300", 70, "2009-10-30", "2024-06-30"),
)

# Well-known A shares kept under their real names (listing dates approximate).
CN_NAMED_STOCKS: Final = (
    Named("600000.SH", "浦发银行", "1999-11-10"),
    Named("600036.SH", "招商银行", "2002-04-09"),
    Named("600519.SH", "贵州茅台", "2001-08-27"),
    Named("600276.SH", "恒瑞医药", "2000-10-18"),
    Named("600887.SH", "伊利股份", "1996-03-12"),
    Named("600900.SH", "长江电力", "2003-11-18"),
    Named("601318.SH", "中国平安", "2007-03-01"),
    Named("601398.SH", "工商银行", "2006-10-27"),
    Named("601012.SH", "隆基绿能", "2012-04-11"),
    Named("601888.SH", "中国中免", "2009-10-15"),
    Named("603288.SH", "海天味业", "2014-02-11"),
    Named("603259.SH", "药明康德", "2018-05-08"),
    Named("688981.SH", "中芯国际", "2020-07-16"),
    Named("688111.SH", "金山办公", "2019-11-18"),
    Named("000001.SZ", "平安银行", "1991-04-03"),
    Named("000002.SZ", "万科A", "1991-01-29"),
    Named("000333.SZ", "美的集团", "2013-09-18"),
    Named("000651.SZ", "格力电器", "1996-11-18"),
    Named("000858.SZ", "五粮液", "1998-04-27"),
    Named("002415.SZ", "海康威视", "2010-05-28"),
    Named("002594.SZ", "比亚迪", "2011-06-30"),
    Named("002714.SZ", "牧原股份", "2014-01-28"),
    Named("300750.SZ", "宁德时代", "2018-06-11"),
    Named("300059.SZ", "东方财富", "2010-03-19"),
    Named("300760.SZ", "迈瑞医疗", "2018-10-16"),
    Named("430047.BJ", "诺思兰德", "2021-11-15"),
    Named("830799.BJ", "艾融软件", "2021-11-15"),
    Named("832566.BJ", "梓橦宫", "2021-11-15"),
    Named("835185.BJ", "贝特瑞", "2021-11-15"),
    Named("870299.BJ", "灿能电力", "2022-03-01"),
    Named("873223.BJ", "荣亿精密", "2022-08-19"),
)

# Fragments for generated A-share names: a head of two characters and an industry tail.
CN_NAME_HEADS: Final = tuple(
    "华中东金新国长海天恒宏瑞鑫兴安盛泰康博达远通信永光明凯嘉锦宁德昌隆丰正祥和汇润航云"
)
CN_NAME_TAILS: Final = (
    "科技", "电子", "股份", "医药", "能源", "材料", "电气", "智能", "生物", "化工",
    "机械", "传媒", "环境", "食品", "物流", "软件", "新材", "精工", "光电", "汽车",
    "控股", "实业", "集团", "药业", "电力", "装备", "通信", "半导体", "农业", "矿业",
)  # fmt: skip

# ETFs and indices: (symbol, name, list date, typical level).
ETFS: Final = (
    Named("510050.SH", "上证50ETF", "2005-02-23", 2.6),
    Named("510300.SH", "沪深300ETF", "2012-05-28", 3.8),
    Named("588000.SH", "科创50ETF", "2020-11-16", 1.0),
    Named("159919.SZ", "沪深300ETF", "2012-05-28", 3.9),
    Named("159915.SZ", "创业板ETF", "2011-12-09", 2.1),
)
INDICES: Final = (
    Named("000001.SH", "上证指数", "1991-07-15", 3100.0),
    Named("000016.SH", "上证50", "2004-01-02", 2600.0),
    Named("000300.SH", "沪深300", "2005-04-08", 3800.0),
    Named("000905.SH", "中证500", "2007-01-15", 5800.0),
    Named("399001.SZ", "深证成指", "1995-01-23", 10500.0),
    Named("399006.SZ", "创业板指", "2010-06-01", 2100.0),
)

# Overseas stocks: market -> rows. Canonical codes follow docs/contract.md (BRK.B -> BRK_B,
# M&M -> M_M); HK codes are five digits, zero-padded.
OVERSEAS: Final[dict[str, tuple[Named, ...]]] = {
    "HK": (
        Named("00001", "长和", "1972-11-01"),
        Named("00002", "中电控股", "1986-01-02"),
        Named("00003", "香港中华煤气", "1960-04-08"),
        Named("00005", "汇丰控股", "1991-07-10"),
        Named("00011", "恒生银行", "1972-07-27"),
        Named("00016", "新鸿基地产", "1972-08-23"),
        Named("00027", "银河娱乐", "1991-10-08"),
        Named("00066", "港铁公司", "2000-10-05"),
        Named("00175", "吉利汽车", "1973-02-23"),
        Named("00267", "中信股份", "1986-02-26"),
        Named("00386", "中国石油化工股份", "2000-10-19"),
        Named("00388", "香港交易所", "2000-06-27"),
        Named("00688", "中国海外发展", "1992-08-20"),
        Named("00700", "腾讯控股", "2004-06-16"),
        Named("00762", "中国联通", "2000-06-22"),
        Named("00857", "中国石油股份", "2000-04-07"),
        Named("00883", "中国海洋石油", "2001-02-28"),
        Named("00939", "建设银行", "2005-10-27"),
        Named("00941", "中国移动", "1997-10-23"),
        Named("01024", "快手-W", "2021-02-05"),
        Named("01211", "比亚迪股份", "2002-07-31"),
        Named("01299", "友邦保险", "2010-10-29"),
        Named("01398", "工商银行", "2006-10-27"),
        Named("01810", "小米集团-W", "2018-07-09"),
        Named("02020", "安踏体育", "2007-07-10"),
        Named("02269", "药明生物", "2017-06-13"),
        Named("02318", "中国平安", "2004-06-24"),
        Named("02388", "中银香港", "2002-07-25"),
        Named("03690", "美团-W", "2018-09-20"),
        Named("03988", "中国银行", "2006-06-01"),
        Named("09618", "京东集团-SW", "2020-06-18"),
        Named("09988", "阿里巴巴-SW", "2019-11-26"),
        Named("09999", "网易-S", "2020-06-11"),
    ),
    "US": (
        Named("AAPL", "Apple Inc.", "1980-12-12"),
        Named("MSFT", "Microsoft Corporation", "1986-03-13"),
        Named("AMZN", "Amazon.com, Inc.", "1997-05-15"),
        Named("GOOGL", "Alphabet Inc. Class A", "2004-08-19"),
        Named("META", "Meta Platforms, Inc.", "2012-05-18"),
        Named("TSLA", "Tesla, Inc.", "2010-06-29"),
        Named("NVDA", "NVIDIA Corporation", "1999-01-22"),
        Named("BRK_B", "Berkshire Hathaway Inc. Class B", "1996-05-09"),
        Named("JPM", "JPMorgan Chase & Co.", "1980-03-17"),
        Named("V", "Visa Inc.", "2008-03-19"),
        Named("JNJ", "Johnson & Johnson", "1944-09-25"),
        Named("WMT", "Walmart Inc.", "1972-08-25"),
        Named("PG", "Procter & Gamble Company", "1950-01-03"),
        Named("XOM", "Exxon Mobil Corporation", "1920-01-02"),
        Named("UNH", "UnitedHealth Group Incorporated", "1984-10-17"),
        Named("HD", "The Home Depot, Inc.", "1981-09-22"),
        Named("MA", "Mastercard Incorporated", "2006-05-25"),
        Named("KO", "The Coca-Cola Company", "1919-09-05"),
        Named("PEP", "PepsiCo, Inc.", "1972-06-01"),
        Named("DIS", "The Walt Disney Company", "1957-11-12"),
        Named("NFLX", "Netflix, Inc.", "2002-05-23"),
        Named("INTC", "Intel Corporation", "1971-10-13"),
        Named("AMD", "Advanced Micro Devices, Inc.", "1972-09-27"),
        Named("BAC", "Bank of America Corporation", "1976-01-02"),
        Named("CSCO", "Cisco Systems, Inc.", "1990-02-16"),
        Named("ORCL", "Oracle Corporation", "1986-03-12"),
        Named("CRM", "Salesforce, Inc.", "2004-06-23"),
        Named("NKE", "NIKE, Inc.", "1980-12-02"),
        Named("MCD", "McDonald's Corporation", "1965-04-21"),
        Named("IBM", "International Business Machines", "1915-11-11"),
        Named("BABA", "Alibaba Group Holding Limited", "2014-09-19"),
    ),
    "IN": (
        Named("RELIANCE", "Reliance Industries", "1995-11-29"),
        Named("TCS", "Tata Consultancy Services", "2004-08-25"),
        Named("HDFCBANK", "HDFC Bank", "1995-11-08"),
        Named("INFY", "Infosys", "1995-02-08"),
        Named("ICICIBANK", "ICICI Bank", "1998-09-17"),
        Named("HINDUNILVR", "Hindustan Unilever", "1995-11-18"),
        Named("SBIN", "State Bank of India", "1995-03-01"),
        Named("BHARTIARTL", "Bharti Airtel", "2002-02-18"),
        Named("ITC", "ITC", "1995-08-23"),
        Named("KOTAKBANK", "Kotak Mahindra Bank", "1995-12-20"),
        Named("LT", "Larsen & Toubro", "1995-02-08"),
        Named("AXISBANK", "Axis Bank", "1998-11-16"),
        Named("M_M", "Mahindra & Mahindra", "1995-11-20"),
        Named("MARUTI", "Maruti Suzuki India", "2003-07-09"),
        Named("BAJFINANCE", "Bajaj Finance", "2003-01-01"),
        Named("WIPRO", "Wipro", "1995-11-08"),
    ),
    "JP": (
        Named("7203", "トヨタ自動車", "1949-05-16"),
        Named("6758", "ソニーグループ", "1958-12-01"),
        Named("9984", "ソフトバンクグループ", "1994-07-22"),
        Named("6861", "キーエンス", "1987-10-20"),
        Named("8306", "三菱UFJフィナンシャル・グループ", "2001-04-02"),
        Named("9432", "日本電信電話", "1987-02-09"),
        Named("7974", "任天堂", "1962-01-04"),
        Named("6098", "リクルートホールディングス", "2014-10-16"),
        Named("4063", "信越化学工業", "1949-05-16"),
        Named("8035", "東京エレクトロン", "1980-10-01"),
        Named("9983", "ファーストリテイリング", "1994-07-14"),
        Named("6501", "日立製作所", "1949-05-16"),
        Named("7267", "本田技研工業", "1957-12-02"),
        Named("4502", "武田薬品工業", "1949-05-16"),
        Named("8058", "三菱商事", "1954-06-01"),
    ),
}

# Crypto (quoted in USDT) and forex pairs (quoted in the second currency).
CRYPTO: Final = (
    Named("BTCUSDT", "Bitcoin / TetherUS", "2017-08-17", 40000.0),
    Named("ETHUSDT", "Ethereum / TetherUS", "2017-08-17", 2000.0),
)
FOREX: Final = (
    Named("EURUSD", "Euro / US Dollar", None, 1.1),
    Named("GBPUSD", "British Pound / US Dollar", None, 1.28),
    Named("USDJPY", "US Dollar / Japanese Yen", None, 125.0),
)
