"""The platform document's own client code (AmazingData 金融数据服务平台 API 开发文档), as
written there: its request examples, ``AmazingDataClient`` (10.1) and ``wait_for_task``
(10.3). The one change is the base URL, a parameter here instead of
``http://localhost:8000/api/v1``. The tests run it against ``etl serve`` unchanged.
"""
# ruff: noqa
# mypy: ignore-errors
# fmt: off

import time

import requests


# 10.1 Token 管理
class AmazingDataClient:
    def __init__(self, base_url, username, password):
        self.base_url = base_url
        self.token = None
        self.login(username, password)

    def login(self, username, password):
        response = requests.post(
            f'{self.base_url}/auth/login',
            json={'username': username, 'password': password}
        )
        self.token = response.json()['data']['access_token']

    def get_headers(self):
        return {'Authorization': f'Bearer {self.token}'}

    def request(self, method, path, **kwargs):
        kwargs['headers'] = self.get_headers()
        return requests.request(method, f'{self.base_url}{path}', **kwargs)


# 10.3 异步任务轮询
def wait_for_task(client, task_id, timeout=300):
    start_time = time.time()
    while time.time() - start_time < timeout:
        response = client.request('GET', f'/cache/tasks/{task_id}')
        task = response.json()['data']['task']

        if task['status'] == 'completed':
            return task
        elif task['status'] == 'failed':
            raise Exception(task['error_message'])

        time.sleep(2)

    raise Exception('任务超时')


# 2.1 用户登录 (调用示例)
def login_example(base):
    response = requests.post(
        f'{base}/auth/login',
        json={'username': 'admin', 'password': 'admin123'}
    )
    token = response.json()['data']['access_token']
    return token


# 2.2 获取当前用户信息
def me_example(base, token):
    headers = {'Authorization': f'Bearer {token}'}
    response = requests.get(f'{base}/auth/me', headers=headers)
    user_info = response.json()['data']
    return user_info


# 3.1 获取SDK配置列表
def configs_example(base, headers):
    response = requests.get(f'{base}/configs/sdk', headers=headers)
    configs = response.json()['data']['items']
    return configs


# 3.2 创建SDK配置 (the upstream's address and login are the test's emulator's)
def create_config_example(base, headers, host, port, username, password):
    response = requests.post(
        f'{base}/configs/sdk',
        headers=headers,
        json={
            'name': '生产环境SDK',
            'username': username,
            'password': password,
            'host': host,
            'port': port,
            'is_default': True
        }
    )
    return response


# 3.3 测试SDK连接
def test_config_example(base, headers, config_id):
    response = requests.post(
        f'{base}/configs/sdk/{config_id}/test',
        headers=headers,
        timeout=60
    )
    result = response.json()['data']
    return result


# 4.1 获取代码列表
def codes_example(base, headers):
    response = requests.get(
        f'{base}/base/codes',
        params={'security_type': 'EXTRA_STOCK_A'},
        headers=headers
    )
    codes = response.json()['data']
    return codes


# 4.2 获取交易日历
def calendar_example(base, headers):
    response = requests.get(
        f'{base}/base/calendar',
        params={
            'market': 'SH',
            'start_date': '20240101',
            'end_date': '20240131'
        },
        headers=headers
    )
    trading_days = response.json()['data']
    return trading_days


# 4.3 获取证券信息
def info_example(base, headers):
    response = requests.get(
        f'{base}/base/codes/600000.SH/info',
        headers=headers
    )
    info = response.json()['data']
    return info


# 5.1 获取股票K线数据
def kline_example(base, headers):
    response = requests.get(
        f'{base}/stock/kline',
        params={
            'codes': '600000.SH,000001.SZ',
            'start_date': '20240101',
            'end_date': '20240131',
            'period': 'daily'
        },
        headers=headers
    )
    kline_data = response.json()['data']
    return kline_data


# 5.2 获取股票K线图表数据
def chart_example(base, headers):
    response = requests.get(
        f'{base}/stock/kline/600000.SH/chart',
        params={
            'start_date': '20240101',
            'end_date': '20240131',
            'period': 'daily'
        },
        headers=headers
    )
    chart_data = response.json()['data']
    return chart_data


# 5.3 批量获取股票K线
def batch_example(base, headers):
    response = requests.post(
        f'{base}/stock/kline/batch',
        headers=headers,
        json={
            'codes': ['600000.SH', '000001.SZ'],
            'start_date': '20240101',
            'end_date': '20240131',
            'period': 'daily'
        }
    )
    return response


# 6.1 获取期货K线数据
def future_kline_example(base, headers):
    response = requests.get(
        f'{base}/future/kline',
        params={
            'codes': 'IF2401.CFE',
            'start_date': '20240101',
            'end_date': '20240131',
            'period': 'daily'
        },
        headers=headers
    )
    return response


# 6.2 获取期货品种列表
def varieties_example(base, headers):
    response = requests.get(
        f'{base}/cache/future-varieties',
        headers=headers
    )
    varieties = response.json()['data']['varieties']
    return varieties


# 6.3 获取主力合约
def main_contracts_example(base, headers):
    response = requests.get(
        f'{base}/cache/main-contracts',
        headers=headers
    )
    main_contracts = response.json()['data']['main_contracts']
    return main_contracts


# 7.1 一键检测所有数据
def detect_example(base, headers):
    response = requests.post(
        f'{base}/cache/detect-all-missing',
        headers=headers,
        json={
            'security_type': 'stock',
            'period_type': 'daily',
            'start_date': '20240101',
            'end_date': '20240131',
            'contract_type': 'all'
        }
    )
    result = response.json()['data']
    return result


# 7.2 一键缓存所有数据
def cache_all_example(base, headers):
    response = requests.post(
        f'{base}/cache/cache-all-missing',
        headers=headers,
        json={
            'security_type': 'stock',
            'period_type': 'daily',
            'start_date': '20240101',
            'end_date': '20240131'
        }
    )
    task_id = response.json()['data']['task_id']
    return task_id


# 7.3 一键补齐缺失数据
def fill_example(base, headers):
    response = requests.post(
        f'{base}/cache/fill-missing',
        headers=headers,
        json={
            'security_type': 'stock',
            'period_type': 'daily',
            'start_date': '20240101',
            'end_date': '20240131'
        }
    )
    return response


# 7.4 获取任务进度
def task_example(base, headers, task_id):
    response = requests.get(
        f'{base}/cache/tasks/{task_id}',
        headers=headers
    )
    task_status = response.json()['data']['task']
    return task_status


# 7.5 获取任务列表
def tasks_example(base, headers):
    response = requests.get(
        f'{base}/cache/tasks',
        params={'page': 1, 'page_size': 10},
        headers=headers
    )
    tasks = response.json()['data']['items']
    return tasks


# 8.1-8.3 财务数据
def finance_examples(base, headers):
    answers = {}
    for path in ('/finance/balance-sheet', '/finance/income', '/finance/cash-flow'):
        response = requests.get(
            f'{base}{path}',
            params={
                'codes': '600000.SH',
                'start_date': '20230101',
                'end_date': '20231231'
            },
            headers=headers
        )
        answers[path] = response.json()['data']
    return answers
